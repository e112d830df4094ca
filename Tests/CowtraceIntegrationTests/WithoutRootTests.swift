import Foundation
import Testing

/// Without CAP_SYS_ADMIN pagemap hides frame numbers: copies are found through the
/// exclusive bit, and still attributed to the instruction at the fixture's label.
@Suite(.serialized) struct WithoutRootTests {
    static let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

    /// cowtrace and the fixture copied where an unprivileged user can run them (the build
    /// folder may sit in a private directory).
    static func unprivilegedCopy(_ path: String) throws -> String {
        chmod(Fixtures.directory, 0o755)
        let copy = Fixtures.directory + "/nobody-" + URL(fileURLWithPath: path).lastPathComponent
        if !FileManager.default.fileExists(atPath: copy) { try FileManager.default.copyItem(atPath: path, toPath: copy) }
        chmod(copy, 0o755)
        return copy
    }

    @Test(arguments: ["step", "fault", "record"])
    func childStoreAttributedWithFramesUnknown(_ engine: String) throws {
        let binary = try Self.unprivilegedCopy(try Fixtures.path("child_store"))
        let cowtrace = try Self.unprivilegedCopy(Paths.cowtrace)
        let label = try Fixtures.symbol("child_store", in: binary)
        let target = try Fixtures.symbol("target", in: binary)
        let run = try Command.run(Self.nobody + [cowtrace, "--json", "-", "--engine", engine, "-q",
                                                 "--watch", String(format: "0x%llx", target), binary], seconds: 60)
        #expect(run.status == 0, "\(run.stderr)")
        let hidden = run.stderr.split(separator: "\n").filter { $0.contains("frame numbers are hidden without CAP_SYS_ADMIN") }
        #expect(hidden.count == 1, "\(run.stderr)")
        let events = run.stdout.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        let clone = try #require(events.first { $0["event"] as? String == "clone" })
        let splits = events.filter { $0["event"] as? String == "split" && hexValue($0["page"]) == pageOf(target) }
        #expect(splits.count == 1, "\(run.stdout)")
        let split = try #require(splits.first)
        #expect(split["writer"] as? Int == clone["child"] as? Int)
        #expect(split["cause"] as? String == "instruction")
        #expect(hexValue(split["ip"]) == label)
        #expect(hexValue(split["address"]) == target + 64)
        #expect(split["frame_before"] is NSNull && split["frame_after"] is NSNull, "\(split)")
        #expect(run.stderr.contains("frames unknown"))
    }

    /// Every attribution fixture, both engines: what a run without frames says about the
    /// target page is what a root run says, or honestly unknown, never another cause.
    @Test(arguments: ["step", "fault", "record"])
    func sameAttributionsAsWithFrames(_ engine: String) throws {
        let cowtrace = try Self.unprivilegedCopy(Paths.cowtrace)
        for (fixture, symbol) in EngineTests.fixtures {
            let binary = try Self.unprivilegedCopy(try Fixtures.path(fixture))
            let page = pageOf(try Fixtures.symbol(symbol, in: binary))
            let command = ["/usr/bin/setarch", "x86_64", "-R", cowtrace, "--json", "-", "--engine", engine, "-q", binary]
            let root = Self.parse(try Command.run(command))
            let hidden = Self.parse(try Command.run(Self.nobody + command))
            let a = EngineTests.signature(root, page: page), b = EngineTests.signature(hidden, page: page)
            #expect(a.count == b.count, "\(fixture): root \(a)\nnobody \(b)")
            for (x, y) in zip(a, b) where x != y {
                #expect(y.contains("cause unknown"), "\(fixture): root \(x)\nnobody \(y)")
            }
        }
    }

    static func parse(_ result: CommandResult) -> TraceRun {
        TraceRun(result: result, events: TraceRun.parseEvents(result.stdout))
    }

    @Test func pagesAndPaddrSayWhatTheyCannotShow() throws {
        let cowtrace = try Self.unprivilegedCopy(Paths.cowtrace)
        let script = "sleep 5 >/dev/null 2>&1 & p=$!; sleep 0.2; end=$(grep -m1 stack /proc/$p/maps | cut -d' ' -f1 | cut -d- -f2); \(cowtrace) paddr $p $(printf '0x%x' $((0x$end - 8))); \(cowtrace) pages $$ $p; kill $p"
        let run = try Command.run(Self.nobody + ["/bin/sh", "-c", script])
        #expect(run.stdout.contains("frame numbers are hidden without CAP_SYS_ADMIN: flags only"), "\(run.stdout)")
        #expect(run.stdout.contains("which process shares a page cannot be shown"), "\(run.stdout)")
        #expect(run.stdout.contains("frame unknown") && run.stdout.contains("present"), "\(run.stdout)")
        #expect(!run.stdout.contains("frame 0x"), "\(run.stdout)")
    }
}
