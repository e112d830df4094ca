import Foundation
import Testing

/// The two engines against each other, engine selection, and a real program.
@Suite(.serialized) struct EngineTests {
    /// (fixture, symbol of its target page, --watch needed)
    static let fixtures: [(String, String)] = [
        ("child_store", "target"), ("parent_store", "target"), ("pipe_read", "buffer"),
        ("grandchild_store", "target"), ("call_chain", "target"), ("clone_spin", "watched"),
        ("thread_store", "target"),
    ]

    /// What a split on the target page says, with pids replaced by their role (0 = the
    /// program, 1 = its first child, …) so two runs compare; `frames` adds the backtrace
    /// (symbol, offset, source line of each frame).
    static func signature(_ run: TraceRun, page: UInt64, frames: Bool = false) -> [String] {
        var roles: [Int: Int] = [:]
        if let first = run.clones.first?["pid"] as? Int { roles[first] = 0 }
        for clone in run.clones { if let c = clone["child"] as? Int { roles[c] = roles.count } }
        return run.splits(onPage: page).map { s in
            let writer = roles[s["writer"] as? Int ?? -1] ?? -1
            let others = (s["others"] as? [Int] ?? []).map { roles[$0] ?? -1 }.sorted()
            let backtrace = frames ? (s["backtrace"] as? [[String: Any]] ?? []).map { "\($0["symbol"] ?? "")+\($0["offset"] ?? "") \($0["source"] ?? "")" } : []
            return "writer \(writer) others \(others) cause \(s["cause"] ?? "") ip \(s["ip"] ?? "") address \(s["address"] ?? "") syscall \(s["syscall"] ?? "")"
                + (frames ? " frames \(backtrace)" : "")
        }
    }

    @Test(arguments: fixtures.map { $0.0 })
    func bothEnginesReportTheSameSplits(_ fixture: String) throws {
        let binary = try Fixtures.path(fixture)
        let symbol = Self.fixtures.first { $0.0 == fixture }!.1
        let page = pageOf(try Fixtures.symbol(symbol, in: binary))
        let step = try TraceRun.run(["--engine", "step", "-q"], [binary], withoutRandomization: true)
        let fault = try TraceRun.run(["--engine", "fault", "-q"], [binary], withoutRandomization: true)
        #expect(step.result.status == 0 && fault.result.status == 0)
        #expect(step.summary?["engine"] as? String == "step")
        #expect(fault.summary?["engine"] as? String == "fault")
        let a = Self.signature(step, page: page), b = Self.signature(fault, page: page)
        #expect(a == b, "step: \(a)\nfault: \(b)")
        if fixture != "clone_spin" { #expect(!a.isEmpty) }
    }

    /// The record engine (no stop per fault) against the fault engine: the same splits on
    /// every fixture's target page, with the same backtraces (unwound from the samples'
    /// stack copies instead of the stopped threads).
    @Test(arguments: fixtures.map { $0.0 } + ["many_pages", "two_callers"])
    func recordEngineMatchesTheFaultEngine(_ fixture: String) throws {
        try Self.compareRecordWithFault(fixture, [])
    }

    /// The same without syscall stops: the kernel's stores (read into a shared buffer, rseq)
    /// are named from the kernel call chains of their faults.
    @Test(arguments: fixtures.map { $0.0 } + ["many_pages", "two_callers"])
    func recordEngineWithoutSyscallStopsMatchesTheFaultEngine(_ fixture: String) throws {
        try Self.compareRecordWithFault(fixture, ["--no-syscall-stops"])
    }

    static func compareRecordWithFault(_ fixture: String, _ options: [String]) throws {
        let binary = try Fixtures.path(fixture)
        let symbol = Self.fixtures.first { $0.0 == fixture }?.1 ?? (fixture == "many_pages" ? "pages" : "second")
        let page = pageOf(try Fixtures.symbol(symbol, in: binary))
        let fault = try TraceRun.run(["--engine", "fault", "-q"], [binary], withoutRandomization: true)
        let record = try TraceRun.run(["--engine", "record", "-q"] + options, [binary], withoutRandomization: true)
        #expect(fault.result.status == 0 && record.result.status == 0, "\(record.result.stderr.suffix(2000))")
        #expect(record.summary?["engine"] as? String == "record")
        #expect(record.summary?["lost_samples"] as? Int == 0)
        let a = Self.signature(fault, page: page, frames: true), b = Self.signature(record, page: page, frames: true)
        #expect(a == b, "fault: \(a)\nrecord: \(b)")
        if fixture != "clone_spin" { #expect(!a.isEmpty) }
    }

    /// -q installs no seccomp filter (it would outlive a detach: every later fork would fail
    /// with ENOSYS) and no no_new_privs; a process that shares nothing runs with PTRACE_CONT
    /// and its clones are seen at their event stops. The program reports its own state.
    @Test func quietRunsWithoutASeccompFilter() throws {
        let quiet = try Command.run([Paths.cowtrace, "-q", "/bin/grep", "-E", "Seccomp:|NoNewPrivs:", "/proc/self/status"])
        #expect(quiet.stdout.contains("Seccomp:\t0") && quiet.stdout.contains("NoNewPrivs:\t0"), "\(quiet.stdout)")
        // Clone-family calls are still seen, with their children and shared pages.
        let forked = try TraceRun.run(["-q"], [try Fixtures.path("multi_proc")])
        #expect(forked.clones.count == 3)
        #expect(forked.clones.allSatisfy { ($0["shared_pages"] as? Int ?? 0) > 0 })
    }

    @Test func autoChoosesTheFaultEngineHere() throws {
        let run = try TraceRun.run(["-q"], [try Fixtures.path("child_store")])
        #expect(run.result.stderr.hasPrefix("cowtrace: engine fault"))
        #expect(run.summary?["engine"] as? String == "fault")
        #expect((run.summary?["faults"] as? Int ?? 0) > 0)
    }

    /// A real interpreter: the child walks a large list, and every page of objects it
    /// touches is copied by a reference-count store inside CPython.
    @Test func pythonChildCopiesPagesThroughRefcounts() throws {
        let script = Paths.packageRoot.appendingPathComponent("Fixtures/python_fork.py").path
        // How fast this runs is measured by Benchmarks/fault_python.sh, not here.
        let run = try TraceRun.run(["--engine", "fault", "-q"], ["/usr/bin/python3", script], seconds: 300)
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let child = try #require(run.clones.first?["child"] as? Int)
        let byChild = run.splits.filter { $0["writer"] as? Int == child && $0["cause"] as? String == "instruction" }
        #expect(byChild.count > 2000, "\(byChild.count) instruction splits by the child")
        let inInterpreter = byChild.filter { split in
            let module = ((split["backtrace"] as? [[String: Any]])?.first?["module"] as? String) ?? ""
            return module.contains("python3")
        }
        #expect(inInterpreter.count > byChild.count / 2)
        // With python3.11-dbg the reference-count store is named: the list iterator.
        let functions = try #require(run.summary?["top_functions"] as? [[String: Any]])
        #expect((functions.first?["function"] as? String)?.hasPrefix("listiter_next") == true, "\(functions.prefix(3))")
        #expect(run.result.stderr.contains("top functions by pages copied:"))
    }
}
