import Glibc

/// One traced thread. ptrace works on threads; `tgid` names its process.
public final class Tracee {
    public internal(set) var tid: pid_t
    public internal(set) var tgid: pid_t
    /// Attached with PTRACE_SEIZE (group-stops arrive as PTRACE_EVENT_STOP and can be LISTENed).
    let seized: Bool
    /// A new tracee's first stop (SIGSTOP, or PTRACE_EVENT_STOP when seized) is ours, not the program's.
    var awaitingFirstStop = true
    /// Entry seen, exit not yet.
    var inFlight: InFlightSyscall?
    /// During its syscall-entry stop: everything it ran before is reported (its traps, steps
    /// or samples came first) and the call itself has not run, so it stored nothing unseen.
    var atSyscallEntry = false
    /// During its exit stop: the call that just finished and how.
    var finished: (call: InFlightSyscall, outcome: SyscallOutcome)?
    /// The process has exec'd at least once since we started tracing it.
    var execCount = 0
    /// Launched or attached by cowtrace, not created by a traced clone.
    public internal(set) var isInitial = false
    /// Single-stepped since its trap flag was last checked: TF in its registers may be ours.
    var mayHaveTrapFlag = false
    /// In a ptrace stop we reaped and have not resumed from (being handled, or held).
    var stopped = false
    /// Resumed from its PTRACE_EVENT_VFORK stop: the kernel holds it until its child execs
    /// or exits, and no PTRACE_INTERRUPT can stop it before that.
    var waitsForVforkChild = false
    /// The observer's per-thread state, kept here so the per-step path needs no lookup.
    public var observerState: AnyObject?

    init(tid: pid_t, tgid: pid_t, seized: Bool) {
        self.tid = tid
        self.tgid = tgid
        self.seized = seized
    }

    public var isLeader: Bool { tid == tgid }
}

/// A syscall between its entry stop and its exit stop.
struct InFlightSyscall {
    let arguments: SyscallArguments
    let decoder: any SyscallDecoder
    /// Printed at entry; its exit is printed too.
    let logged: Bool
    let entryText: String
    /// For clone-family calls: what was asked for, decoded at entry.
    let clone: CloneRequest?
    let instructionPointer: UInt64
}

/// How a tracee is let go after a stop.
public enum ResumeMode: Sendable {
    /// Run to the next syscall stop (PTRACE_SYSCALL).
    case syscall
    /// Execute one instruction (PTRACE_SINGLESTEP).
    case singleStep
    /// Leave it stopped; the observer resumes it later.
    case hold
    /// Only the stops the log needs: PTRACE_CONT where a seccomp filter picks the syscalls
    /// to stop at (launched with -q), PTRACE_SYSCALL otherwise.
    case run
}

/// Reads "Tgid:" from /proc/TID/status.
func threadGroup(of tid: pid_t) -> pid_t? { ProcFS.status(tid)?.pid("Tgid") }

/// Reads "PPid:" from /proc/TID/status.
func parentProcess(of tid: pid_t) -> pid_t? { ProcFS.parentPid(tid) }
