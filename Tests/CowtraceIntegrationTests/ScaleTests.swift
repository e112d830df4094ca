import Foundation
import Testing

/// What cowtrace keeps follows the live processes and the pages present, not the processes
/// seen or the size reserved.
@Suite(.serialized) struct ScaleTests {
    /// cowtrace's open descriptors while it still traces many_children's parent, after
    /// `children` children have been forked, split a page and exited.
    static func descriptorsAfter(children: Int) throws -> [String] {
        let binary = try Fixtures.path("many_children")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["--signal=KILL", "120", Paths.cowtrace, "-q", "-o", "/dev/null", binary, "\(children)", "hold"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
        // The parent prints this once every child has been reaped; it then waits on stdin.
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("children done") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        #expect(String(decoding: seen, as: UTF8.self).contains("children done"))
        // timeout's child is cowtrace's guardian; the tracing runs in the guardian's child.
        func firstChild(_ pid: Int32) -> Int32? {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return children.split(separator: " ").first.flatMap { Int32($0) }
        }
        guard let guardian = firstChild(process.processIdentifier), let cowtrace = firstChild(guardian) else {
            Issue.record("cowtrace's tracing process not found under timeout")
            return []
        }
        let fdDir = "/proc/\(cowtrace)/fd"
        let names = try FileManager.default.contentsOfDirectory(atPath: fdDir)
        return names.map { (try? FileManager.default.destinationOfSymbolicLink(atPath: fdDir + "/" + $0)) ?? "?" }.sorted()
    }

    @Test func descriptorsDoNotGrowWithExitedChildren() throws {
        let few = try Self.descriptorsAfter(children: 3)
        let many = try Self.descriptorsAfter(children: 150)
        #expect(!few.isEmpty)
        // Each exited child used to leave its /proc/PID/mem open (and its unwinder).
        #expect(many.count <= few.count, "after 3 children: \(few.count) open\nafter 150: \(many.count) open: \(many)")
        // The live parent's mem, pagemap and maps, /proc/kpageflags, the unwinder's mem.
        let procFiles = many.filter { $0.hasPrefix("/proc/") }
        #expect(procFiles.count <= 5, "\(procFiles)")
    }

    /// The fault engine stops a thread only at faults on pages that may be shared (a BPF
    /// filter on its page-fault events, Linux 6.10+ as root): a child's 512 first touches of
    /// memory mapped after the fork run on, and its one store into a shared page still stops
    /// it and is reported, at that instruction.
    @Test func faultsOnUnsharedPagesDoNotStop() throws {
        let binary = try Fixtures.path("fresh_pages")
        let store = try Fixtures.symbol("fresh_share_store", in: binary)
        let run = try TraceRun.run(["-q", "--engine", "fault"], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let atStore = run.splits.filter { hexValue($0["ip"]) == store }
        #expect(atStore.count == 1, "splits: \(run.splits.map { "\($0["page"] ?? "") \($0["ip"] ?? "")" })")
        #expect(atStore.first?["cause"] as? String == "instruction")
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let version = release.split(separator: ".").prefix(2).compactMap { Int($0.prefix { $0.isNumber }) }
        guard geteuid() == 0, version.count == 2, version[0] * 100 + version[1] >= 610 else { return }
        let faults = run.summary?["faults"] as? Int ?? 0
        #expect(faults > 0 && faults < 100, "\(faults) page faults stopped the program")
    }

    /// Every exec'd program is a new address-space layout, and each layout had a libdw session
    /// of its own that read (and decompressed) libc's separate debug info again: every shell of
    /// a script paid for it. strace, attached to cowtrace's tracing process, now sees each
    /// .debug file opened once for six shells that each fork children which split pages in
    /// libc, and those splits still name libc's functions with their source lines.
    @Test func debugInfoIsReadOncePerFile() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("cowtrace-debugfiles-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let json = work.appendingPathComponent("events.json").path, opens = work.appendingPathComponent("opens.txt").path
        let script = "sleep 1; for i in 1 2 3 4 5 6; do bash -c '/bin/true; /bin/true'; done"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["--signal=KILL", "120", Paths.cowtrace, "-q", "--json", json, "-o", "/dev/null", "bash", "-c", script]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        func firstChild(_ pid: Int32) -> Int32? {
            let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return children.split(separator: " ").first.flatMap { Int32($0) }
        }
        var tracing: Int32?
        for _ in 0..<100 where tracing == nil {
            tracing = firstChild(process.processIdentifier).flatMap(firstChild)
            if tracing == nil { usleep(10_000) }
        }
        let strace = Process()
        strace.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        strace.arguments = ["-qq", "-e", "trace=openat", "-o", opens, "-p", "\(try #require(tracing))"]
        strace.standardError = FileHandle.nullDevice
        try strace.run()
        process.waitUntilExit()
        strace.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let lines = try String(contentsOfFile: opens, encoding: .utf8).split(separator: "\n")
        func opened(_ prefix: String) -> [String] {
            lines.compactMap { line -> String? in
                guard let start = line.range(of: "\"" + prefix), !line.contains("ENOENT") else { return nil }
                return String(line[start.upperBound...].prefix { $0 != "\"" })
            }
        }
        // strace was there while the shells ran: it saw their pagemaps opened. (libc's debug
        // file may have been read before it attached, for the first shell's `sleep`.)
        let pagemaps = Set(opened("/proc/").filter { $0.hasSuffix("/pagemap") })
        #expect(pagemaps.count >= 6, "strace saw \(pagemaps.count) pagemaps opened")
        let perFile = Dictionary(grouping: opened("/usr/lib/debug/"), by: { $0 }).mapValues(\.count)
        #expect(perFile.values.allSatisfy { $0 == 1 }, "\(perFile)")
        // The shells' splits in libc are named, with libc's source lines.
        let run = TraceRun.parseEvents(try String(contentsOfFile: json, encoding: .utf8))
        let stacks = Dictionary(uniqueKeysWithValues: run.filter { $0["event"] as? String == "stack" }.compactMap { e -> (Int, [[String: Any]])? in
            guard let id = e["id"] as? Int, let frames = e["frames"] as? [[String: Any]] else { return nil }
            return (id, frames)
        })
        let namedInLibc = run.filter { $0["event"] as? String == "split" }.filter { split in
            guard let id = split["stack"] as? Int, let top = stacks[id]?.first else { return false }
            return (top["module"] as? String)?.contains("libc.so") == true && top["symbol"] != nil && (top["source"] as? String)?.contains(".c:") == true
        }
        let writers = Set(namedInLibc.compactMap { $0["writer"] as? Int })
        #expect(writers.count >= 6, "libc splits named in \(writers.count) processes")
    }

    /// A 16 TiB MAP_NORESERVE reservation (AddressSanitizer's shadow size) with 8 pages
    /// present: snapshotting it reads present pages only, so cowtrace neither aborts nor
    /// stalls, and the child's one store into it is reported.
    @Test func sixteenTebibyteReservationReportsItsSplit() throws {
        let binary = try Fixtures.path("huge_reserve")
        let store = try Fixtures.symbol("reserve_store", in: binary)
        let run = try TraceRun.run(["-q"], [binary, "16384"], seconds: 60)
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let atStore = run.splits.filter { hexValue($0["ip"]) == store }
        #expect(atStore.count == 1, "splits: \(run.splits.map { "\($0["page"] ?? "") \($0["ip"] ?? "")" })")
        #expect(atStore.first?["region"] as? String == "anon")
        #expect(atStore.first?["cause"] as? String == "instruction")
    }

    /// A page copied out of a transparent huge page is reported as the 4 KiB page copied,
    /// flagged as part of a huge page (kpageflags), on the split line and in JSON.
    @Test func transparentHugePageSplitIsFlagged() throws {
        let binary = try Fixtures.path("thp_split")
        let store = try Fixtures.symbol("thp_store", in: binary)
        let run = try TraceRun.run(["-q"], [binary])
        #expect(run.result.status == 0)
        let words = run.result.stdout.split(separator: " ")
        guard words.count == 4, words[3].hasPrefix("1") else {
            Issue.record("no transparent huge page for the fixture (\(run.result.stdout)); THP disabled?")
            return
        }
        let page = hexValue(String(words[1]))
        let split = run.splits.first { hexValue($0["ip"]) == store }
        #expect(split.flatMap { hexValue($0["page"]) } == page)
        #expect(split?["huge_page"] as? Bool == true)
        #expect(run.result.stderr.contains("(anon, 4 KiB of a huge page) by \(String(format: "0x%llx", store))"), "\(run.result.stderr.prefix(3000))")
        // Pages of ordinary 4 KiB mappings are not flagged.
        #expect(run.splits.contains { $0["region"] as? String == "[stack]" && $0["huge_page"] as? Bool == false })
    }
}
