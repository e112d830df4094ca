import CCowtrace
import Glibc

/// The reference engine: every thread of every process that still shares pages is
/// single-stepped; after each step the pages the instruction could have changed are
/// re-read, and each changed frame is attributed to that instruction only if its computed
/// write set touches the page, else to the kernel. Processes with nothing shared run freely.
public final class StepEngine: CowEngine {
    private let instructions: InstructionCache
    private let maxSteps: Int?
    public private(set) var steps = 0
    /// Steps issued (some may still be under way): what --max-steps bounds.
    private var stepsIssued = 0
    private var warnedMaxSteps = false

    private final class ThreadState {
        /// Registers before the next step (valid while the thread has not run since).
        var before: Registers?
        /// The step under way: its instruction and whether a signal is delivered with it.
        var pending: (instruction: DecodedInstruction?, signal: Bool)?
        var stepsSinceSweep = 0
        /// Opmask and vector registers before the step, for instructions whose masks need them.
        var vector: VectorState?
    }

    public init(tracker: CowTracker, disassembler: Disassembler, maxSteps: Int?) {
        self.instructions = InstructionCache(disassembler: disassembler, processes: tracker.processes)
        self.maxSteps = maxSteps
        super.init(tracker: tracker, kind: .step)
    }

    private func state(_ tracee: Tracee) -> ThreadState {
        if let s = tracee.observerState as? ThreadState { return s }
        let s = ThreadState()
        tracee.observerState = s
        return s
    }

    private var stepBudgetLeft: Bool { maxSteps.map { stepsIssued < $0 } ?? true }
    override func userWritesUnwatched(_ tracee: Tracee) -> Bool { !stepBudgetLeft }
    override var stepCount: Int { steps }

    // MARK: Syscalls

    override func causeBeforeSyscall(_ tracee: Tracee, _ call: SyscallArguments) -> (UInt64) -> SplitCause {
        // Between the last step and this entry only the return to user mode ran (the
        // `syscall` instruction itself stores nothing), unless stepping has stopped.
        guard stepBudgetLeft else {
            let name = call.name
            return { _ in .unknown(note: "found at \(name) entry after --max-steps") }
        }
        return super.causeBeforeSyscall(tracee, call)
    }

    public override func syscallEntered(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?, tracer: Tracer) {
        state(tracee).before = nil
        super.syscallEntered(tracee, call, clone: clone, tracer: tracer)
    }

    public override func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer) {
        state(tracee).before = nil
        super.syscallExited(tracee, call, outcome, clone: clone, tracer: tracer)
    }

    override func codeChanged(_ pid: pid_t) { instructions.invalidate(pid) }

    // MARK: Stepping

    public override func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if isHeld(tracee) { return .hold }
        // Between a syscall's entry and exit stops: PTRACE_SYSCALL, or the exit stop is lost.
        if tracee.inFlight != nil { return .syscall }
        guard tracker.shares(tracee.tgid) else {
            // Running free, its syscalls no longer stop it (-q): its mask may change unseen.
            // Inside a syscall it stops at the exit first (a fork's parent, before its ledger).
            if tracee.inFlight == nil { masks.invalidate(tracee.tid) }
            // A step under way when the last page stopped being shared (a signal stop came
            // first) never runs: not counted, and its registers are stale by the next fork.
            if let thread = tracee.observerState as? ThreadState {
                if thread.pending != nil { stepsIssued -= 1 }
                thread.pending = nil
                thread.before = nil
            }
            return .run
        }
        let thread = state(tracee)
        // A step interrupted by a signal stop is issued again, not counted again.
        guard stepBudgetLeft || thread.pending != nil else {
            if !warnedMaxSteps {
                warnedMaxSteps = true
                tracker.stream.note("--max-steps \(maxSteps!) reached: later splits are found at syscall stops, cause unknown")
            }
            return .syscall
        }
        if thread.before == nil { thread.before = try? Ptrace.registers(tracee.tid) }
        guard let regs = thread.before else { return .syscall }
        let instruction = instructions.instruction(at: UInt64(regs.rip), in: tracee.tgid, memory: tracer.memory(of: tracee.tgid))
        // A syscall is run with PTRACE_SYSCALL, so its entry and exit are logged and the
        // pages it writes are attributed to it at the exit stop.
        // With a signal that has no handler, no user instruction runs before the syscall:
        // stepping would execute the syscall unseen.
        if instruction?.isSyscall == true && (signal == 0 || !CowEngine.hasHandler(tracee.tgid, signal)) {
            if thread.pending != nil { stepsIssued -= 1 }
            thread.pending = nil
            return .syscall
        }
        _ = masks.mask(tracee.tid)  // known before the step, to restore after its forced trap
        if signal == 0 { masks.unblockTrapForStep(tracee.tid) }
        if thread.pending == nil { stepsIssued += 1 }
        // A signal with a handler: the step stops at the handler's entry, the frame written
        // and the instruction at RIP not run (it runs after sigreturn).
        thread.pending = (instruction, signal != 0 && CowEngine.hasHandler(tracee.tgid, signal))
        thread.vector = instruction?.needsVectorState == true ? try? VectorState.read(tracee.tid) : nil
        return .singleStep
    }

    /// A step over an instruction that cannot trap by itself: the SIGTRAP is ours.
    public override func ownTrap(_ tracee: Tracee, tracer: Tracer) -> Bool {
        let thread = state(tracee)
        guard let pending = thread.pending, let instruction = pending.instruction, !instruction.canRaiseTrap else { return false }
        thread.pending = nil
        completeStep(tracee, thread, pending)
        fireBreak(tracee, tracer: tracer)
        return true
    }

    public override func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool {
        let thread = state(tracee)
        // TRAP_BRKPT (1) or TRAP_TRACE (2): the single-step trap we asked for.
        guard let pending = thread.pending, info.code == 1 || info.code == 2 else { return false }
        thread.pending = nil
        completeStep(tracee, thread, pending)
        fireBreak(tracee, tracer: tracer)
        return true
    }

    /// The trap of a step under way (the step done, its trap queued behind another stop).
    public override func ownsSignal(_ tracee: Tracee, info: SignalDetails) -> Bool {
        guard info.signal == SIGTRAP, let pending = state(tracee).pending else { return false }
        return info.code == 1 || info.code == 2 || pending.instruction?.canRaiseTrap == false
    }

    private func completeStep(_ tracee: Tracee, _ thread: ThreadState, _ pending: (instruction: DecodedInstruction?, signal: Bool)) {
        steps += 1
        let after = try? Ptrace.registers(tracee.tid)
        defer { thread.before = after }
        // The step's trap was forced: a SIGTRAP the program blocks was unblocked to deliver it.
        masks.restoreAfterStep(tracee.tid)
        if pending.signal { masks.invalidate(tracee.tid) }  // a handler's entry: its sa_mask
        guard let before = thread.before, let after, tracker.shares(tracee.tgid) else { return }
        attributeStep(tracee, instruction: pending.signal ? nil : pending.instruction, signal: pending.signal, before: before, after: after,
                      vector: thread.vector, stepsSinceSweep: &thread.stepsSinceSweep)
    }

    override func threadGone(_ tracee: Tracee) { tracee.observerState = nil }

    override func steppedByHand(_ tracee: Tracee) { state(tracee).before = nil }
}
