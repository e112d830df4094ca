import Foundation
import Testing

/// The record engine's own promises: a fault is not a copy, and samples lost to a full ring
/// buffer are counted and leave the pages they copied unknown, never misattributed.
@Suite(.serialized) struct RecordEngineTests {
    /// The child copies 64 pages and writes them again; then the parent, last holder of each
    /// old frame, writes them all while the child lives: 64 more write faults, no copy.
    @Test func rewritingCopiedPagesIsNoSplit() throws {
        let binary = try Fixtures.path("rewrite_pages")
        let childStore = try Fixtures.symbol("rewrite_child_store", in: binary)
        let parentStore = try Fixtures.symbol("rewrite_parent_store", in: binary)
        let pages = try Fixtures.symbol("pages", in: binary)
        // Not --watch: the parent keeps other pages shared (so recorded) while the child lives.
        let run = try TraceRun.run(["--engine", "record", "-q"], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let parent = try #require(run.clones.first?["pid"] as? Int)
        let child = try #require(run.clones.first?["child"] as? Int)
        let inArray = { (event: [String: Any]) in hexValue(event["page"]).map { $0 >= pages && $0 < pages + 64 * 4096 } ?? false }
        let splits = run.splits.filter(inArray)
        #expect(splits.count == 64, "\(run.result.stderr.suffix(2000))")
        #expect(splits.allSatisfy { $0["writer"] as? Int == child && hexValue($0["ip"]) == childStore })
        let reuses = run.events("reuse").filter(inArray)
        #expect(reuses.count == 64)
        #expect(reuses.allSatisfy { $0["pid"] as? Int == parent && hexValue($0["ip"]) == parentStore })
        // The parent's faults were recorded (64 of them) and made no split.
        #expect((run.summary?["faults"] as? Int ?? 0) >= 128)
        #expect(run.summary?["lost_samples"] as? Int == 0)
    }

    /// Four pages of ring buffer per thread cannot hold the child's 2,000 samples of 8 KiB
    /// stacks: the losses are counted (summary, JSON, a note) and every page copied without
    /// a sample is unknown with a note saying so; none is given to a wrong cause.
    @Test func tinyBufferReportsLostSamples() throws {
        let binary = try Fixtures.path("many_pages")
        let label = try Fixtures.symbol("page_loop_store", in: binary)
        let pages = try Fixtures.symbol("pages", in: binary)
        let range = String(format: "0x%llx-0x%llx", pages, pages + 2000 * 4096)
        let run = try TraceRun.run(["--engine", "record", "-q", "--buffer-pages", "4", "--watch", range], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let lost = try #require(run.summary?["lost_samples"] as? Int)
        #expect(lost > 0)
        #expect(run.summary?["buffer_pages"] as? Int == 4)
        #expect(run.result.stderr.contains("lost samples: \(lost)"))
        #expect(run.splits.count == 2000)
        let unknown = run.splits.filter { $0["cause"] as? String == "unknown" }
        #expect(!unknown.isEmpty)
        #expect(unknown.allSatisfy { ($0["note"] as? String)?.contains("lost") == true })
        #expect(unknown.count <= lost)
        let named = run.splits.filter { $0["cause"] as? String != "unknown" }
        #expect(named.allSatisfy { $0["cause"] as? String == "instruction" && hexValue($0["ip"]) == label })
    }

    /// The ring buffers are per CPU: a thread that moves to another CPU before each store
    /// leaves its samples in every buffer, and each copy is still its own store's, none lost
    /// or given to another cause (without syscall stops: nothing but the samples' times puts
    /// them in order).
    @Test(arguments: [[], ["--no-syscall-stops"]])
    func samplesOfOneThreadOnEveryCPU(_ options: [String]) throws {
        let binary = try Fixtures.path("cpu_hop")
        let store = try Fixtures.symbol("hop_store", in: binary)
        let pages = try Fixtures.symbol("hops", in: binary)
        let run = try TraceRun.run(["--engine", "record", "-q"] + options, [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let child = try #require(run.clones.first?["child"] as? Int)
        let splits = run.splits.filter { hexValue($0["page"]).map { $0 >= pages && $0 < pages + 64 * 4096 } ?? false }
        #expect(splits.count == 64, "\(run.result.stderr.suffix(2000))")
        #expect(splits.allSatisfy { $0["writer"] as? Int == child && $0["cause"] as? String == "instruction" && hexValue($0["ip"]) == store })
        #expect(run.summary?["lost_samples"] as? Int == 0)
    }

    /// -p PID --engine record --while-shared on a running server: its fork is recorded, and
    /// once the child is gone cowtrace detaches by itself and ends with the summary; the
    /// process runs on, untraced, and forks again normally.
    @Test func attachRecordsOneForkAndLetsGo() throws {
        let target = try Sleeper(seconds: 20)
        defer { target.process.terminate() }
        let pid = target.pid

        let tracer = Process()
        tracer.executableURL = URL(fileURLWithPath: Paths.cowtrace)
        tracer.arguments = ["-q", "--engine", "record", "--while-shared", "-p", "\(pid)"]
        let err = Pipe()
        tracer.standardError = err
        try tracer.run()
        usleep(500_000)
        kill(pid, SIGUSR1)  // the sleeper forks a child that exits at once
        var waited = 0
        while tracer.isRunning && waited < 100 {
            usleep(100_000)
            waited += 1
        }
        #expect(!tracer.isRunning, "cowtrace did not let go by itself")
        if tracer.isRunning { kill(tracer.processIdentifier, SIGKILL) }
        tracer.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(tracer.terminationStatus == 0, "\(log)")
        #expect(log.contains("clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"), "\(log)")
        #expect(log.contains("CLONE_CHILD_SETTID); frame"), "\(log)")
        #expect(log.contains("--while-shared: nothing is shared any more; detaching from \(pid)"), "\(log)")
        #expect(log.contains("cow summary (engine record"), "\(log)")
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.contains("TracerPid:\t0"))
        #expect(!status.contains("State:\tT"))
        // It forks again, untraced, and lives on.
        kill(pid, SIGUSR1)
        usleep(400_000)
        #expect(target.process.isRunning)
    }

    /// Attached to a server that does not fork, nothing is recorded and cowtrace sleeps: no
    /// thread of it wakes every few milliseconds (its reader polled every 4 ms: some 250
    /// context switches a second, for as long as the server waits for its next BGSAVE).
    @Test func idleWhileNothingIsRecorded() throws {
        let target = try Sleeper(seconds: 20)
        defer { target.process.terminate() }
        let tracer = Process()
        tracer.executableURL = URL(fileURLWithPath: Paths.cowtrace)
        tracer.arguments = ["-q", "--engine", "record", "--while-shared", "-p", "\(target.pid)"]
        tracer.standardError = FileHandle.nullDevice
        try tracer.run()
        defer {
            kill(tracer.processIdentifier, SIGINT)
            tracer.waitUntilExit()
        }
        usleep(700_000)
        // The guardian's child does the tracing.
        let children = (try? String(contentsOfFile: "/proc/\(tracer.processIdentifier)/task/\(tracer.processIdentifier)/children", encoding: .utf8)) ?? ""
        let tracing = try #require(children.split(separator: " ").first.flatMap { Int($0) })
        func switches() -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(tracing)/task")) ?? []
            return tasks.reduce(0) { sum, task in
                let status = (try? String(contentsOfFile: "/proc/\(tracing)/task/\(task)/status", encoding: .utf8)) ?? ""
                let line = status.split(separator: "\n").first { $0.hasPrefix("voluntary_ctxt_switches:") }
                return sum + (line.flatMap { Int($0.split(separator: "\t").last ?? "") } ?? 0)
            }
        }
        let before = switches()
        usleep(1_000_000)
        let woken = switches() - before
        #expect(woken < 25, "\(woken) wake-ups in a second with nothing recorded")
    }

    /// Without syscall stops the mapping calls are recorded as samples: a shared page the
    /// child discards with madvise(MADV_DONTNEED) is dropped (reason madvise), not copied.
    /// A parent's second thread stores into 256 shared pages without pause (on a CPU of its
    /// own) while the main thread forks, four times. Each fork is taken at its event stop
    /// (-q), after the writer ran on; the other threads are stopped before the snapshot and
    /// held, so the parent's pages are not read again at the clone's exit. For each child,
    /// each page is the parent's copy exactly once: the writer's store (nm's `beside_store`)
    /// or, copied between the kernel's fork and the event stop, a copy inside clone (the
    /// frames shared at the clone are the child's; the parent's, those the snapshot read).
    /// None is missed (taking the shared frames for the parent's shows those copies as pages
    /// still shared, dropped at the child's exit), none unexplained, none the children's.
    @Test(arguments: [["--engine", "record", "--no-syscall-stops"], ["--engine", "record"]])
    func forkBesideARunningWriterThread(_ options: [String]) throws {
        let binary = try Fixtures.path("fork_beside_writer")
        let store = try Fixtures.symbol("beside_store", in: binary)
        let pages = try Fixtures.symbol("beside", in: binary)
        let run = try TraceRun.run(["-q"] + options, [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let parent = try #require(run.clones.first?["pid"] as? Int)
        let children = run.clones.filter { $0["shares_memory"] as? Bool == false }.compactMap { $0["child"] as? Int }
        #expect(children.count == 4)
        let splits = run.splits.filter { hexValue($0["page"]).map { $0 >= pages && $0 < pages + 256 * 4096 } ?? false }
        for child in children {
            let copied = splits.filter { ($0["others"] as? [Int])?.contains(child) == true }.compactMap { hexValue($0["page"]) }
            #expect(copied.count == 256 && Set(copied).count == 256, "child \(child): \(copied.count) splits; \(run.result.stderr.suffix(2000))")
        }
        let odd = splits.filter { split in
            guard split["writer"] as? Int == parent else { return true }
            if split["cause"] as? String == "instruction" { return hexValue(split["ip"]) != store }
            return split["cause"] as? String != "unknown" || (split["note"] as? String)?.contains("copied in the parent inside clone") != true
        }
        #expect(odd.isEmpty, "\(odd.prefix(3))")
        #expect(run.summary?["lost_samples"] as? Int == 0)
    }

    @Test func discardedPageIsADropWithoutSyscallStops() throws {
        let binary = try Fixtures.path("no_cow")
        let run = try TraceRun.run(["--engine", "record", "-q", "--no-syscall-stops"], [binary, "dontneed"])
        #expect(run.result.status == 0, "\(run.result.stderr)")
        let page = try #require(hexValue(run.result.stdout.split(separator: "\n").first.map(String.init)))
        #expect(run.splits(onPage: pageOf(page)).isEmpty, "\(run.result.stderr)")
        #expect(run.events("drop").contains { hexValue($0["page"]) == pageOf(page) && $0["reason"] as? String == "madvise" })
    }
}
