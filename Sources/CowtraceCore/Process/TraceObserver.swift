import Glibc

/// What an engine (page ledger, step engine, fault engine) hooks into. The tracer calls these
/// from its event loop, with the tracee stopped; every method has a do-nothing default.
public protocol TraceObserver: AnyObject {
    /// Syscall-entry stop. `clone` is set for clone-family calls.
    func syscallEntered(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?, tracer: Tracer)
    /// Syscall-exit stop, after the log line is printed.
    func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer)
    /// A new process or thread exists (the parent's PTRACE_EVENT_FORK/VFORK/CLONE stop).
    func created(_ child: Tracee, by parent: Tracee, request: CloneRequest?, tracer: Tracer)
    /// How many pages the clone left shared (for the clone line's annotation and JSON event).
    func sharedPageCount(child: pid_t) -> Int?
    /// The process exec'd: its address space is new.
    func execed(_ tracee: Tracee, tracer: Tracer)
    /// PTRACE_EVENT_EXIT: the thread is about to exit; its memory is still there.
    func exiting(_ tracee: Tracee, tracer: Tracer)
    /// The thread is gone (exit status reaped).
    func gone(_ tracee: Tracee, tracer: Tracer)
    /// A new tracee's first stop (ours, not the program's), before it runs any instruction.
    func firstStop(_ tracee: Tracee, tracer: Tracer)
    /// A SIGTRAP signal-delivery stop with this si_code: true if the observer caused it (a
    /// single step, its own perf event) and the signal must not reach the program.
    func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool
    /// A SIGTRAP stop the observer knows it caused (a single step over an instruction that
    /// cannot raise SIGTRAP itself): handled without reading the siginfo. Return true if handled.
    func ownTrap(_ tracee: Tracee, tracer: Tracer) -> Bool
    /// A signal-delivery stop found while letting go (a stop reaped by a pause, a signal
    /// still queued): true if the observer raised it (its perf trap, its single step), so it
    /// must be swallowed, never delivered.
    func ownsSignal(_ tracee: Tracee, info: SignalDetails) -> Bool
    /// The tracer is about to let this thread go (detach): drop what the observer armed on
    /// it (perf events), so nothing of ours fires after.
    func willDetach(_ tracee: Tracee, tracer: Tracer)
    /// How to resume this tracee; `signal` is being delivered with this resume (0 for none).
    func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode
    /// The event loop is over.
    func finished(tracer: Tracer)
    /// Every tracee stopped so far has been let go; the loop is about to wait. Work that
    /// needs no stopped tracee (formatting reports) is done here, while they run.
    func beforeWait()
    /// The periodic tick (a few times a second), before the loop waits again.
    func ticked(tracer: Tracer)
}

extension TraceObserver {
    public func syscallEntered(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?, tracer: Tracer) {}
    public func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer) {}
    public func created(_ child: Tracee, by parent: Tracee, request: CloneRequest?, tracer: Tracer) {}
    public func sharedPageCount(child: pid_t) -> Int? { nil }
    public func execed(_ tracee: Tracee, tracer: Tracer) {}
    public func exiting(_ tracee: Tracee, tracer: Tracer) {}
    public func gone(_ tracee: Tracee, tracer: Tracer) {}
    public func firstStop(_ tracee: Tracee, tracer: Tracer) {}
    public func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool { false }
    public func ownTrap(_ tracee: Tracee, tracer: Tracer) -> Bool { false }
    public func ownsSignal(_ tracee: Tracee, info: SignalDetails) -> Bool { false }
    public func willDetach(_ tracee: Tracee, tracer: Tracer) {}
    public func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode { .syscall }
    public func finished(tracer: Tracer) {}
    public func beforeWait() {}
    public func ticked(tracer: Tracer) {}
}

/// The parts of a siginfo an observer needs.
public struct SignalDetails: Sendable {
    public let signal: Int32
    public let code: Int32
    public let address: UInt64
    /// perf_event sigtrap: the event's sig_data cookie.
    public let perfData: UInt64
    /// perf_event sigtrap: si_perf_flags (TRAP_PERF_FLAG_ASYNC: raised while SIGTRAP was
    /// blocked, delivered late).
    public var perfFlags: UInt32 = 0
}
