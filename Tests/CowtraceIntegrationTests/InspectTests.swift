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

    /// Whether a process is gone or a zombie (not stopped, not running under us).
    static func ended(_ pid: Int) -> Bool {
        for _ in 0..<50 {
            guard let state = state(pid) else { return true }
            if state.contains("Z") { return true }
            usleep(20_000)
        }
        return false
    }

    @Test(arguments: ["step", "fault"])
    func onBreakKillEndsEveryProcess(_ engine: String) throws {
        let binary = try Fixtures.path("child_store")
        let target = try Fixtures.symbol("target", in: binary)
        let run = try TraceRun.run(["--engine", engine, "-q", "--watch", String(format: "0x%llx", target),
                                    "--break-on-split", "--on-break", "kill"], [binary], seconds: 30)
        #expect(run.result.status == 137, "\(run.result.stderr)")
        #expect(run.result.stderr.contains("break: killing every traced process"))
        for event in run.events("exit") { #expect(event["signal"] as? String == "SIGKILL", "\(event)") }
        let child = try #require(run.clones.first?["child"] as? Int)
        #expect(Self.ended(child))
    }

    /// Detached at the child's store, the program finishes on its own: the parent's
    /// `return target[8] == 0 ? 0 : 1` says its copy was never written.
    @Test(arguments: ["step", "fault"])
    func onBreakDetachLetsTheProgramFinish(_ engine: String) throws {
        let binary = try Fixtures.path("child_store")
        let target = try Fixtures.symbol("target", in: binary)
        let run = try TraceRun.runToFiles(["--engine", engine, "-q", "--watch", String(format: "0x%llx", target),
                                           "--break-on-split", "--on-break", "detach"], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr)")
        #expect(run.result.stderr.contains("break: detaching"))
        let parent = try #require(run.clones.first?["pid"] as? Int)
        let child = try #require(run.clones.first?["child"] as? Int)
        #expect(Self.ended(parent), "\(Self.state(parent) ?? "")")
        #expect(Self.ended(child), "\(Self.state(child) ?? "")")
    }

    /// The prompt on a pseudo-terminal: bt names the store's line, x reads the new value in
    /// the child, continue lets the program finish (its status becomes cowtrace's).
    @Test(arguments: ["step", "fault"])
    func promptBacktraceExamineContinue(_ engine: String) throws {
        let binary = try Fixtures.path("child_store")
        let target = try Fixtures.symbol("target", in: binary)
        let label = try Fixtures.symbol("child_store", in: binary)
        let out = try Command.run(["/usr/bin/python3", Paths.packageRoot.appendingPathComponent("Scripts/pty-drive.py").path,
                                   "--send", "bt", "--send", String(format: "x 0x%llx 1", target + 64), "--send", "continue",
                                   "--", Paths.cowtrace, "--engine", engine, "-q", "--watch", String(format: "0x%llx", target),
                                   "--break-on-split", binary], seconds: 60).stdout
        // The store has completed: the writer is at the next instruction, still in main.
        let afterBt = try #require(out.range(of: "(cowtrace) bt\n")).upperBound
        let frame0 = out[afterBt...].prefix { $0 != "\n" }.split(separator: " ")
        let ip = try #require(frame0.count > 2 ? hexValue(String(frame0[1])) : nil, "\(out)")
        #expect(ip > label && ip <= label + 15, "\(out)")
        let line = try Fixtures.sourceLine(of: ip, in: binary)
        #expect(frame0[2].hasPrefix("main+") && frame0.last.map(String.init) == line, "\(out)")
        #expect(out.contains(String(format: "0x%llx:  0x0000000000002222", target + 64)), "\(out)")
        #expect(out.contains("cow summary"), "\(out)")
        #expect(out.hasSuffix("exit: 0\n"), "\(out)")
    }

    @Test func promptKill() throws {
        let binary = try Fixtures.path("child_store")
        let target = try Fixtures.symbol("target", in: binary)
        let out = try Command.run(["/usr/bin/python3", Paths.packageRoot.appendingPathComponent("Scripts/pty-drive.py").path,
                                   "--send", "kill", "--", Paths.cowtrace, "-q", "--watch", String(format: "0x%llx", target),
                                   "--break-on-split", binary], seconds: 60).stdout
        #expect(out.contains("(cowtrace) kill"), "\(out)")
        #expect(out.contains("break: killing every traced process"), "\(out)")
        #expect(out.hasSuffix("exit: 137\n"), "\(out)")
    }

    @Test func paddrAndPagesRejectBadInput() throws {
        for args in [["paddr", "999999999", "0x1000"], ["paddr", "\(getpid())", "0x10"], ["paddr", "\(getpid())", "xyz"],
                     ["pages", "999999999"], ["paddr", "\(getpid())"]] {
            let run = try Command.run([Paths.cowtrace] + args)
            #expect(run.status != 0)
            #expect(run.stderr.split(separator: "\n").count == 1 && run.stderr.hasPrefix("cowtrace: "), "\(args): \(run.stderr)")
        }
    }

    /// `pages` on a process that dies mid-read: a dead process's pagemap reads as empty, so
    /// the counts would be wrong; cowtrace exits non-zero with one line naming the error.
    @Test func pagesOfAProcessDyingMidReadFails() throws {
        let binary = try Fixtures.path("many_mappings")
        let ready = Fixtures.directory + "/mm-\(UUID().uuidString).out"
        let target = try LeaveNoTraceTests.spawn([binary, "40000"], stdout: ready, stderr: "/dev/null")
        defer { kill(target, SIGKILL); _ = LeaveNoTraceTests.wait(target, seconds: 5) }
        for _ in 0..<1000 where !((try? String(contentsOfFile: ready, encoding: .utf8)) ?? "").contains("ready") { usleep(10_000) }
        // Killed once cowtrace has its pagemap open (the maps are read): the pages are being read.
        let pagemap = "/proc/\(target)/pagemap"
        let opened = { (reader: pid_t) in
            (3..<16).contains { fd in
                var buffer = [CChar](repeating: 0, count: 256)
                let n = readlink("/proc/\(reader)/fd/\(fd)", &buffer, buffer.count - 1)
                return n > 0 && String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == pagemap
            }
        }
        // A read can end between two looks (the whole of it takes milliseconds): then it is
        // made again, until one is caught with the file open.
        var reader: pid_t = 0, out = "", caught = false
        for _ in 0..<10 where !caught {
            out = Fixtures.directory + "/mm-\(UUID().uuidString).log"
            reader = try LeaveNoTraceTests.spawn([Paths.cowtrace, "pages", "\(target)"], stdout: "/dev/null", stderr: out)
            var status: Int32 = 0
            while !caught && waitpid(reader, &status, WNOHANG) == 0 {
                caught = opened(reader)
                if !caught { usleep(100) }
            }
        }
        #expect(caught, "cowtrace was never seen with \(pagemap) open")
        kill(target, SIGKILL)
        let status = LeaveNoTraceTests.wait(reader)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(status != nil && status != 0, "status \(String(describing: status)): \(text)")
        #expect(text.split(separator: "\n").count == 1 && text.hasPrefix("cowtrace: ") && text.contains("\(target)"), "\(text)")
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

/// A fault-engine break stops before the store; cowtrace single-steps it to let it land.
/// Whatever that step runs into is reported, never dropped.
@Suite(.serialized) struct BreakStepTests {
    func run(_ mode: String) throws -> (TraceRun, page: UInt64, label: UInt64) {
        let binary = try Fixtures.path("break_step")
        let area = try Fixtures.symbol("area", in: binary)
        let label = try Fixtures.symbol("break_store", in: binary)
        let watch = String(format: "0x%llx-0x%llx", area, area + 2 * 4096)
        let run = try TraceRun.run(["--engine", "fault", "-q", "--watch", watch, "--break-on-split", "--on-break", "continue"],
                                   [binary, mode], seconds: 60)
        return (run, area, label)
    }

    @Test func storeCrossingIntoASecondPageReportsBoth() throws {
        let (run, area, label) = try run("cross")
        #expect(run.result.status == 0, "\(run.result.stderr)")
        let child = try #require(run.clones.first?["child"] as? Int)
        for page in [area, area + 4096] {
            let split = try #require(run.splits(onPage: page).first, "no split of \(page): \(run.result.stderr)")
            #expect(split["writer"] as? Int == child)
            #expect(split["cause"] as? String == "instruction")
            #expect(hexValue(split["ip"]) == label)
        }
    }

    @Test func signalArrivingDuringTheStepIsDelivered() throws {
        let (run, area, label) = try run("signal")
        // The child exits 0 only if its SIGALRM handler ran.
        #expect(run.result.status == 0, "\(run.result.stderr)")
        #expect(run.result.stderr.contains("break: the store did not complete: SIGALRM arrived first"), "\(run.result.stderr)")
        let split = try #require(run.splits(onPage: area + 4096).first ?? run.splits(onPage: area).first)
        #expect(hexValue(split["ip"]) == label)
    }

    @Test func writerEndingAroundTheStepIsReaped() throws {
        let (run, area, label) = try run("exit")
        #expect(run.result.status == 7, "\(run.result.stderr)")
        let split = try #require(run.splits(onPage: area).first, "\(run.result.stderr)")
        #expect(hexValue(split["ip"]) == label)
        #expect(run.events("exit").contains { $0["status"] as? Int == 7 })
    }
}
