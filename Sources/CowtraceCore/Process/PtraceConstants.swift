// PtraceRequest, PtraceEvent and PtraceOptions are generated from Tables/xlat/ptrace_*.in
// (Syscalls/Xlat+Generated.swift), their values checked against <sys/ptrace.h>.

extension PtraceOptions {
    /// What cowtrace always asks for: follow every new process and thread, see execs and exits.
    public static let following: PtraceOptions = [.traceSysGood, .traceFork, .traceVfork, .traceVforkDone, .traceClone, .traceExec, .traceExit]
}
