import Foundation
import Testing

/// --break-on-split, paddr and pages.
@Suite(.serialized) struct InspectTests {
    static func state(_ pid: Int) -> String? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init)
    }

    /// The fixture's own constants: the child stores 0x2222 at target[8], which is 0 before.
    @Test(arguments: ["step", "fault"])
    func breakAtTheChildStoreAndLeaveBothStopped(_ engine: String) throws {
        let binary = try Fixtures.path("child_store")
        let label = try Fixtures.symbol("child_store", in: binary)
        let target = try Fixtures.symbol("target", in: binary)
        let untouched = try Fixtures.symbol("untouched", in: binary)
        let run = try TraceRun.runToFiles(["--engine", engine, "-q", "--watch", String(format: "0x%llx", target),
                                    "--watch", String(format: "0x%llx", untouched), "--break-on-split"], [binary])
        let log = run.result.stderr
        let parent = try #require(run.clones.first?["pid"] as? Int)
        let child = try #require(run.clones.first?["child"] as? Int)
        defer { kill(pid_t(parent), SIGKILL); kill(pid_t(child), SIGKILL) }
        #expect(log.contains(String(format: "break at split 1: cow: split 0x%llx", pageOf(target))), "\(log)")
        #expect(log.contains(String(format: "=> 0x%llx  movq $0x2222", label)))
        #expect(log.contains(String(format: "written: 8 bytes at 0x%llx: new 0x2222 in %d, old 0x0 still in %d", target + 64, child, parent)), "\(log)")
        #expect(log.contains("left stopped (SIGSTOP): \(min(parent, child)) \(max(parent, child))"))
        usleep(200_000)
        #expect(Self.state(parent)?.contains("T") == true, "\(Self.state(parent) ?? "gone")")
        #expect(Self.state(child)?.contains("T") == true, "\(Self.state(child) ?? "gone")")

        // paddr: different frames for the copied page, the same frame for the untouched one.
        func frame(_ pid: Int, _ address: UInt64) throws -> String {
            let out = try Command.run([Paths.cowtrace, "paddr", "\(pid)", String(format: "0x%llx", address)])
            #expect(out.status == 0, "\(out.stderr)")
            let words = out.stdout.split(separator: " ", omittingEmptySubsequences: true)
            return String(try #require(words.firstIndex(of: "frame").map { words[$0 + 1] }))
        }
        #expect(try frame(parent, target) != frame(child, target))
        #expect(try frame(parent, untouched) == frame(child, untouched))

        // pages: the untouched page is counted as shared between them.
        let pages = try Command.run([Paths.cowtrace, "pages", "\(parent)", "\(child)", "--list"])
        #expect(pages.stdout.contains(String(format: "0x%llx  frame", untouched)) && pages.stdout.contains("shared with \(child)"), "\(pages.stdout)")
    }

    @Test func paddrAndPagesRejectBadInput() throws {
        for args in [["paddr", "999999999", "0x1000"], ["paddr", "\(getpid())", "0x10"], ["paddr", "\(getpid())", "xyz"],
                     ["pages", "999999999"], ["paddr", "\(getpid())"]] {
            let run = try Command.run([Paths.cowtrace] + args)
            #expect(run.status != 0)
            #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.hasPrefix("cowtrace: "), "\(args): \(run.stderr)")
        }
    }

    @Test func paddrOfOurOwnMemory() throws {
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 8192)
        buffer.initialize(repeating: 1, count: 8192)  // present, ours
        defer { buffer.deallocate() }
        let run = try Command.run([Paths.cowtrace, "paddr", "\(getpid())", String(format: "0x%llx", UInt64(UInt(bitPattern: buffer)) + 4096)])
        #expect(run.status == 0)
        #expect(run.stdout.contains("present") && run.stdout.contains("frame 0x"), "\(run.stdout)")
    }
}
