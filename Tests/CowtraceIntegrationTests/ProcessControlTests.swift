import Foundation
import Testing

/// Exit statuses, signals, several processes, attach and detach.
@Suite(.serialized) struct ProcessControlTests {
    @Test func exitStatusIsTheProgramsStatus() throws {
        let binary = try Fixtures.path("exit_with")
        let run = try Command.run([Paths.cowtrace, binary, "3"])
        #expect(run.status == 3)
        #expect(run.stderr.contains("exit_group(3)"))
        #expect(run.stderrLines.contains("+++ exited with 3 +++"))
    }

    @Test func killedProgramGives128PlusSignal() throws {
        let binary = try Fixtures.path("exit_with")
        let run = try Command.run([Paths.cowtrace, binary, "-11"])
        #expect(run.status == 128 + 11)
        #expect(run.stderr.contains("--- SIGSEGV {si_signo=SIGSEGV, si_code=SI_USER"))
        #expect(run.stderrLines.contains("+++ killed by SIGSEGV +++") || run.stderrLines.contains("+++ killed by SIGSEGV (core dumped) +++"))
    }

    /// A thread SIGKILLs its process while the main thread forks in a loop: the kill often
    /// lands inside a fork, with the other thread held. Each run must end on its own (the
    /// summary is printed) with the program's status, under both engines.
    @Test(arguments: ["fault", "step"])
    func processKilledWhileForking(_ engine: String) throws {
        let binary = try Fixtures.path("fork_killed")
        for delay in [300, 1000, 2000, 4000, 8000] {
            let run = try Command.run([Paths.cowtrace, "--engine", engine, "-q", "--summary-only", binary, "\(delay)"], seconds: 60)
            #expect(run.status == 137 && run.stderr.contains("cow summary"), "delay \(delay): \(run.status) \(run.stderr.suffix(500))")
        }
    }

    @Test func everyProcessIsLogged() throws {
        let binary = try Fixtures.path("multi_proc")
        let run = try Command.run([Paths.cowtrace, binary])
        #expect(run.status == 0)
        #expect(run.stdout.split(separator: "\n").sorted() == ["child 1", "child 2", "child 3"])
        let lines = StraceLines.joinedWithPid(run.stderr)
        let children = lines.filter { $0.line.hasPrefix("clone(") }.compactMap { $0.line.split(separator: " ").last.map(String.init) }
        #expect(children.count == 3)
        for (i, child) in children.enumerated() {
            let own = lines.filter { $0.pid == child }.map(\.line)
            #expect(own.contains { $0.hasPrefix("write(1, \"child \(i + 1)\\n\", 8)") }, "\(own)")
            #expect(own.contains { $0.hasPrefix("exit_group(\(i + 1))") }, "\(own)")
            #expect(own.contains("+++ exited with \(i + 1) +++"))
        }
    }

    @Test func outputFileAndJSON() throws {
        let binary = try Fixtures.path("fork_demo")
        let log = Fixtures.directory + "/fork.log"
        let run = try Command.run([Paths.cowtrace, "-o", log, "--json", "-", binary])
        #expect(run.status == 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"))
        let events = run.stdout.split(separator: "\n").compactMap { line -> [String: Any]? in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        let clone = try #require(events.first { $0["event"] as? String == "clone" })
        #expect(clone["syscall"] as? String == "clone")
        #expect(clone["flags"] as? [String] == ["CLONE_CHILD_SETTID", "CLONE_CHILD_CLEARTID"].sorted { a, b in
            ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"].firstIndex(of: a)! < ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"].firstIndex(of: b)!
        })
        #expect(clone["exit_signal"] as? String == "SIGCHLD")
        #expect(clone["shares_memory"] as? Bool == false)
        #expect((clone["child_tidptr"] as? String)?.hasPrefix("0x") == true)
        let syscall = try #require(events.first { $0["event"] as? String == "syscall" && $0["name"] as? String == "clone" })
        #expect(syscall["ret"] as? Int == clone["child"] as? Int)
        #expect((syscall["text"] as? String)?.hasPrefix("clone(child_stack=NULL") == true)
        let exits = events.filter { $0["event"] as? String == "exit" }
        #expect(exits.count == 2)
        #expect(exits.allSatisfy { $0["status"] as? Int == 0 })
    }

    @Test func errnoNamesLikeStrace() throws {
        let run = try Command.run([Paths.cowtrace, "/bin/ls", "/nonexistent-cowtrace-path"])
        #expect(run.status == 2)
        #expect(run.stderr.contains("= -1 ENOENT (No such file or directory)"))
    }

    /// -p PID: attach to a running process, follow what it forks, and on SIGINT detach and
    /// leave it running.
    @Test func attachFollowsForksAndDetachesOnInterrupt() throws {
        let target = try Sleeper(seconds: 20)
        defer { target.process.terminate() }
        let pid = target.pid

        let tracer = Process()
        tracer.executableURL = URL(fileURLWithPath: Paths.cowtrace)
        tracer.arguments = ["-q", "-p", "\(pid)"]
        let err = Pipe()
        tracer.standardError = err
        try tracer.run()
        usleep(500_000)
        kill(pid, SIGUSR1)  // makes the sleeper fork
        usleep(700_000)
        kill(tracer.processIdentifier, SIGINT)
        tracer.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"), "\(log)")
        #expect(log.contains("detached from \(pid)"))
        #expect(tracer.terminationStatus == 128 + SIGINT)
        // Still alive, not stopped, not traced.
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        #expect(status.contains("TracerPid:\t0"))
        #expect(!status.contains("State:\tT"))
    }

    /// Ctrl-C on cowtrace with a launched program: like strace, the signal goes to the
    /// program, which ends as it would untraced (killed by SIGINT, or on with it ignored when
    /// it inherited SIGINT ignored), and cowtrace exits with its status; nothing is left behind.
    @Test func interruptGoesToLaunchedProgram() throws {
        let traced = try Sleeper(seconds: 2, under: [Paths.cowtrace, "-q"])
        let tracer = traced.process, pid = traced.pid
        // What the runner hands down (it may ignore or block SIGINT) is what the program has:
        // then it runs on to its end, as it would untraced.
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func has(_ field: String) -> Bool {
            status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
                .flatMap { UInt64($0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces), radix: 16) }
                .map { $0 & (1 << (UInt64(SIGINT) - 1)) != 0 } ?? false
        }
        kill(tracer.processIdentifier, SIGINT)
        tracer.waitUntilExit()
        #expect(tracer.terminationStatus == (has("SigIgn") || has("SigBlk") ? 0 : 128 + SIGINT))
        usleep(100_000)
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }
}
