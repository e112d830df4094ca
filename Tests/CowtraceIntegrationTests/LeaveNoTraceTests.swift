import Foundation
import Testing

/// SPEC "Leaving no trace": a process cowtrace lets go of (SIGINT, SIGKILL of cowtrace,
/// --on-break detach|stop) runs on as if never traced: alive, not stopped, no SIGTRAP of
/// ours received or pending, no tracer, and its later forks succeed. A launched program
/// starts with the signal state it would have had untraced; job control and Ctrl-C work.
@Suite(.serialized) struct LeaveNoTraceTests {
    /// Rounds per engine and variant (COWTRACE_ROUNDS raises it for a longer soak).
    static let rounds = Int(ProcessInfo.processInfo.environment["COWTRACE_ROUNDS"] ?? "") ?? 10

    /// The trap_counter fixture, untraced, its output in a file: it forks in a loop while
    /// two threads write pages, one of them blocking every signal; it prints every SIGTRAP
    /// it gets and every failed fork.
    final class Target {
        let pid: pid_t
        let output: String

        /// `storm`: forks back to back and vforks in a third thread (see the fixture).
        init(storm: Bool = false) throws {
            let binary = try Fixtures.path("trap_counter")
            output = Fixtures.directory + "/trap-\(UUID().uuidString).out"
            pid = try LeaveNoTraceTests.spawn([binary, "120"] + (storm ? ["storm"] : []), stdout: output, stderr: "/dev/null")
            for _ in 0..<500 where !text.contains("\n") { usleep(10_000) }
        }

        var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }

        /// Whether some thread of it is traced (cowtrace has attached).
        var traced: Bool { threads().contains { !$0.contains("TracerPid:\t0\n") } }

        func threads() -> [String] {
            let tids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return tids.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/status", encoding: .utf8) }
        }

        /// Everything a let-go process must be; `label` names the round.
        func expectUntouched(_ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
            // The kernel (or cowtrace's tracing process, after its guardian died) may still
            // be letting go: wait for no tracer on any thread.
            for _ in 0..<300 where threads().contains(where: { !$0.contains("TracerPid:\t0\n") }) { usleep(10_000) }
            let statuses = threads()
            #expect(kill(pid, 0) == 0 && !statuses.isEmpty, "\(label): the program is gone: \(text)", sourceLocation: sourceLocation)
            for status in statuses {
                let field = { (name: String) in status.split(separator: "\n").first { $0.hasPrefix(name) }.map(String.init) ?? "" }
                #expect(field("TracerPid:") == "TracerPid:\t0", "\(label): still traced", sourceLocation: sourceLocation)
                #expect(!field("State:").contains("T") && !field("State:").contains("t ("), "\(label): \(field("State:"))", sourceLocation: sourceLocation)
                let pending = [field("SigPnd:"), field("ShdPnd:")].compactMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) }
                #expect(pending.allSatisfy { $0 & (1 << (UInt64(SIGTRAP) - 1)) == 0 }, "\(label): a SIGTRAP is pending: \(pending)", sourceLocation: sourceLocation)
            }
            // Its SIGTRAP handler is still there (a forced step trap finding SIGTRAP blocked
            // resets it to SIG_DFL), and the blocking thread still blocks everything.
            let caught = statuses.first?.split(separator: "\n").first { $0.hasPrefix("SigCgt:") }.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } ?? 0
            #expect(caught & (1 << (UInt64(SIGTRAP) - 1)) != 0, "\(label): the program's SIGTRAP handler is gone", sourceLocation: sourceLocation)
            let masks = statuses.compactMap { $0.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } }
            #expect(masks.contains { $0 & (1 << (UInt64(SIGTRAP) - 1)) != 0 }, "\(label): no thread blocks SIGTRAP any more: \(masks)", sourceLocation: sourceLocation)
            let out = text
            #expect(!out.contains("SIGTRAP"), "\(label): the program received SIGTRAP: \(out.suffix(300))", sourceLocation: sourceLocation)
            #expect(!out.contains("fork failed"), "\(label): a fork failed: \(out.suffix(300))", sourceLocation: sourceLocation)
            // And it forks on: "fork ok" after SIGUSR1.
            let before = out.components(separatedBy: "fork ok").count
            kill(pid, SIGUSR1)
            for _ in 0..<300 where text.components(separatedBy: "fork ok").count == before { usleep(10_000) }
            #expect(text.components(separatedBy: "fork ok").count > before, "\(label): no fork after SIGUSR1", sourceLocation: sourceLocation)
        }

        deinit {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }

    /// posix_spawn, so that only this pid is waited for (other tests' processes are not reaped).
    static func spawn(_ argv: [String], stdout: String, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        guard posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ) == 0 else { throw FixtureError.compile(argv[0], "posix_spawn failed") }
        return pid
    }

    /// The exit status (128+N for signal N), or nil after `seconds` (then it is killed).
    static func wait(_ pid: pid_t, seconds: Double = 30) -> Int32? {
        var status: Int32 = 0
        for _ in 0..<Int(seconds * 100) {
            if waitpid(pid, &status, WNOHANG) == pid {
                return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
        return nil
    }

    static func cowtrace(_ options: [String], log: String) throws -> pid_t {
        try spawn([Paths.cowtrace, "-o", log] + options, stdout: "/dev/null", stderr: log + ".err")
    }

    static let variants: [(String, Bool)] = [("fault", false), ("fault", true), ("step", false), ("step", true)]

    /// SIGINT to `cowtrace -p` at a random moment: it detaches and the program runs on.
    @Test(arguments: variants)
    func interruptLeavesNothing(_ engine: String, _ quiet: Bool) throws {
        let target = try Target()
        for round in 1...Self.rounds {
            let log = Fixtures.directory + "/int-\(UUID().uuidString).log"
            let tracer = try Self.cowtrace(["--engine", engine, "--summary-only", "-p", "\(target.pid)"] + (quiet ? ["-q"] : []), log: log)
            usleep(UInt32.random(in: 30_000...300_000))
            kill(tracer, SIGINT)
            let status = Self.wait(tracer)
            #expect(status == 128 + SIGINT || status == 0, "round \(round): status \(String(describing: status))")
            target.expectUntouched("\(engine)\(quiet ? " -q" : "") round \(round)")
        }
    }

    /// cowtrace SIGKILLed while attached: the program runs on all the same.
    @Test(arguments: ["fault", "step"])
    func sigkillOfCowtraceLeavesNothing(_ engine: String) throws {
        let target = try Target()
        for round in 1...max(3, Self.rounds / 2) {
            let log = Fixtures.directory + "/kill-\(UUID().uuidString).log"
            let tracer = try Self.cowtrace(["--engine", engine, "--summary-only", "-p", "\(target.pid)"], log: log)
            usleep(UInt32.random(in: 100_000...300_000))
            kill(tracer, SIGKILL)
            _ = Self.wait(tracer)
            target.expectUntouched("\(engine) SIGKILL round \(round)")
        }
    }

    /// Let go (SIGINT, or SIGKILL of cowtrace) while the program is inside forks and a
    /// vfork: an attached thread's first stop may be a fork's event stop instead of the
    /// interrupt asked for, and a vfork parent cannot stop until its child exits. cowtrace
    /// used to wait for both forever (1 round in 3 hung, the program left traced and stopped).
    @Test(arguments: [("fault", SIGINT), ("step", SIGINT), ("fault", SIGKILL), ("step", SIGKILL)])
    func lettingGoDuringForksLeavesNothing(_ engine: String, _ signal: Int32) throws {
        let target = try Target(storm: true)
        for round in 1...Self.rounds {
            let log = Fixtures.directory + "/storm-\(UUID().uuidString).log"
            let tracer = try Self.cowtrace(["--engine", engine, "--summary-only", "-p", "\(target.pid)"], log: log)
            for _ in 0..<500 where !target.traced { usleep(5_000) }
            usleep(UInt32.random(in: 0...100_000))
            kill(tracer, signal)
            let status = Self.wait(tracer, seconds: 10)
            #expect(status != nil, "round \(round): cowtrace did not end")
            if signal == SIGINT { #expect(status == 128 + SIGINT || status == 0, "round \(round): status \(String(describing: status))") }
            target.expectUntouched("\(engine) \(signal == SIGINT ? "SIGINT" : "SIGKILL") during forks, round \(round)")
        }
    }

    /// --on-break detach: cowtrace lets go at the first split and exits.
    @Test(arguments: variants)
    func onBreakDetachLeavesNothing(_ engine: String, _ quiet: Bool) throws {
        let target = try Target()
        for round in 1...3 {
            let log = Fixtures.directory + "/detach-\(UUID().uuidString).log"
            let tracer = try Self.cowtrace(["--engine", engine, "--break-on-split", "--on-break", "detach", "-p", "\(target.pid)"] + (quiet ? ["-q"] : []), log: log)
            let status = Self.wait(tracer)
            #expect(status != nil, "round \(round): cowtrace did not end")
            target.expectUntouched("\(engine)\(quiet ? " -q" : "") detach round \(round)")
        }
    }

    /// --on-break stop: the processes are left stopped (state T, not traced); SIGCONT
    /// resumes them, with nothing of ours left.
    @Test(arguments: variants)
    func onBreakStopThenContinue(_ engine: String, _ quiet: Bool) throws {
        let target = try Target()
        for round in 1...2 {
            let log = Fixtures.directory + "/stop-\(UUID().uuidString).log"
            let tracer = try Self.cowtrace(["--engine", engine, "--break-on-split", "--on-break", "stop", "-p", "\(target.pid)"] + (quiet ? ["-q"] : []), log: log)
            let status = Self.wait(tracer)
            #expect(status != nil, "round \(round): cowtrace did not end")
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let line = text.split(separator: "\n").first { $0.contains("left stopped (SIGSTOP): ") }
            let pids = line.map { $0.components(separatedBy: "left stopped (SIGSTOP): ")[1].split(separator: " ").compactMap { pid_t($0) } } ?? []
            #expect(pids.contains(target.pid), "round \(round): \(text)")
            // Its SIGSTOP was queued before the detach: it stops before any instruction of its
            // own, once it gets a CPU (under load, a moment after cowtrace exits).
            let state = { target.threads().first?.split(separator: "\n").first { $0.hasPrefix("State:") } ?? "" }
            for _ in 0..<200 where !state().contains("T (stopped)") { usleep(10_000) }
            #expect(state().contains("T (stopped)"), "round \(round): \(state())")
            for pid in pids { kill(pid, SIGCONT) }
            target.expectUntouched("\(engine)\(quiet ? " -q" : "") stop+SIGCONT round \(round)")
        }
    }

    /// A launched program sees the signal state, no_new_privs, seccomp mode and priority it
    /// would have untraced: here SIGHUP ignored (as under nohup), SIGUSR2 blocked, and SIGPIPE
    /// ignored by the python3 that starts it.
    @Test func launchedProgramStartsAsUntraced() throws {
        let wrapper = ["/usr/bin/python3", "-c",
                       "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                       + "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2}); os.execv(sys.argv[1], sys.argv[1:])"]
        let probe = ["/bin/grep", "-E", "^(SigIgn|SigBlk|NoNewPrivs|Seccomp):", "/proc/self/status"]
        let untraced = try Command.run(wrapper + probe)
        let traced = try Command.run(wrapper + [Paths.cowtrace] + probe)
        let quiet = try Command.run(wrapper + [Paths.cowtrace, "-q"] + probe)
        #expect(untraced.stdout.contains("NoNewPrivs:\t0") && untraced.stdout.contains("Seccomp:\t0"))
        let ignored = untraced.stdout.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } ?? 0
        let blocked = untraced.stdout.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }.flatMap { UInt64($0.split(separator: "\t").last ?? "", radix: 16) } ?? 0
        #expect(ignored & (1 << (UInt64(SIGHUP) - 1)) != 0 && blocked & (1 << (UInt64(SIGUSR2) - 1)) != 0, "\(untraced.stdout)")
        #expect(traced.stdout == untraced.stdout, "traced:\n\(traced.stdout)untraced:\n\(untraced.stdout)")
        #expect(quiet.stdout == untraced.stdout, "-q:\n\(quiet.stdout)untraced:\n\(untraced.stdout)")
        // Its scheduling priority (stat's 19th field, nice): cowtrace's tracing thread raises
        // its own once the program is launched, never the program's.
        let nice = ["/usr/bin/cut", "-d", " ", "-f19", "/proc/self/stat"]
        let niceUntraced = try Command.run(nice).stdout
        #expect(try Command.run([Paths.cowtrace, "-q"] + nice).stdout == niceUntraced)
        #expect(try Command.run([Paths.cowtrace, "-q", "--engine", "record"] + nice).stdout == niceUntraced)
    }

    /// SIGSTOP stops a launched program (its group stop is held, not resumed), SIGCONT resumes it.
    @Test func jobControlStopsAndResumesALaunchedProgram() throws {
        let sleeper = try Fixtures.path("sleeper")
        let out = Fixtures.directory + "/job-\(UUID().uuidString).out"
        let tracer = try Self.spawn([Paths.cowtrace, "-q", sleeper, "20"], stdout: out, stderr: "/dev/null")
        defer { kill(tracer, SIGKILL); _ = Self.wait(tracer, seconds: 5) }
        var pid: pid_t?
        for _ in 0..<500 where pid == nil {
            pid = ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n").first.flatMap { pid_t($0) }
            usleep(10_000)
        }
        let program = try #require(pid)
        defer { kill(program, SIGKILL) }
        let state = { () -> String in
            let status = (try? String(contentsOfFile: "/proc/\(program)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init) ?? ""
        }
        // SIGSTOP, twice (SIGTSTP may come blocked or ignored from the test runner).
        for signal in [SIGSTOP, SIGSTOP] {
            kill(program, signal)
            // A traced process in a group stop shows "t (tracing stop)"; untraced, "T (stopped)".
            for _ in 0..<200 where !state().contains("stop") { usleep(10_000) }
            usleep(200_000)
            #expect(state().contains("stop"), "after \(signal): \(state())")
            kill(program, SIGCONT)
            for _ in 0..<200 where state().contains("stop") { usleep(10_000) }
            #expect(!state().contains("stop"), "after SIGCONT: \(state())")
        }
    }

    /// Ctrl-C (SIGINT) on cowtrace running a program: the program's handler runs, cowtrace
    /// exits with the program's status, and the program's child is let go, running.
    @Test func interruptRunsTheProgramsHandler() throws {
        let binary = try Fixtures.path("interrupt_handler")
        let out = Fixtures.directory + "/ih-\(UUID().uuidString).out"
        let tracer = try Self.spawn([Paths.cowtrace, "-q", binary], stdout: out, stderr: "/dev/null")
        var child: pid_t?
        for _ in 0..<500 where child == nil {
            let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            child = text.split(separator: "\n").first { $0.hasPrefix("child ") }.flatMap { pid_t($0.dropFirst(6)) }
            usleep(10_000)
        }
        let sleeping = try #require(child)
        defer { kill(sleeping, SIGKILL) }
        kill(tracer, SIGINT)
        let status = Self.wait(tracer)
        #expect(status == 3)
        #expect(((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("handler ran"))
        let childStatus = (try? String(contentsOfFile: "/proc/\(sleeping)/status", encoding: .utf8)) ?? ""
        #expect(childStatus.contains("TracerPid:\t0") && !childStatus.contains("State:\tT") && !childStatus.contains("State:\tt"), "\(childStatus)")
    }

    /// -q takes a clone at its event stop (no seccomp filter): the parent's other threads ran
    /// meanwhile, and what they copied is the parent's copy (cause unknown), never blamed on
    /// the child, which has run no instruction.
    @Test func quietCloneOfAThreadedParentBlamesNoChild() throws {
        let target = try Target()
        let json = Fixtures.directory + "/q-\(UUID().uuidString).json"
        let tracer = try Self.cowtrace(["--engine", "fault", "-q", "--summary-only", "--json", json, "-p", "\(target.pid)"], log: json + ".log")
        usleep(800_000)
        kill(tracer, SIGINT)
        _ = Self.wait(tracer)
        let events = ((try? String(contentsOfFile: json, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        let clones = events.filter { $0["event"] as? String == "clone" }
        #expect(!clones.isEmpty)
        let children = Set(clones.compactMap { $0["child"] as? Int })
        let blamed = events.filter { $0["event"] as? String == "split" && children.contains($0["writer"] as? Int ?? 0) && ($0["note"] as? String)?.contains("inside clone") == true }
        #expect(blamed.isEmpty, "\(blamed.prefix(3))")
        target.expectUntouched("-q clone at its event stop")
    }
}
