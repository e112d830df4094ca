import CCowtrace
import Glibc

/// The fast engine: every thread of a process that shares pages carries a perf software
/// page-fault event with sigtrap, so it stops only when it faults (the copy is made by then,
/// RIP is the faulting instruction). The faulting page is checked in the ledger; a changed
/// frame is the faulting instruction's doing only if that instruction writes the page,
/// otherwise the kernel's (its rseq update, or a store on the way back to user mode).
/// Syscall exits sweep the shared pages as in the step engine. Native speed in between.
///
/// A thread that blocks SIGTRAP would get its perf traps late (queued until it unblocks):
/// while it does, its event is disabled and it is single-stepped, as the step engine does,
/// until a syscall exit shows the mask without SIGTRAP again. A signal with a handler is
/// delivered with a step, so the handler's first stop shows the mask it runs with.
public final class FaultEngine: CowEngine {
    /// si_code of a perf sigtrap.
    static let trapPerf = Int32(cow_TRAP_PERF)
    /// A step's trap: TRAP_BRKPT, TRAP_TRACE, or SIGTRAP itself for the stop at a signal
    /// handler's entry (ptrace_notify).
    static let stepCodes: [Int32] = [Int32(cow_TRAP_BRKPT), Int32(cow_TRAP_TRACE), SIGTRAP]
    /// si_perf_flags: the trap was raised while SIGTRAP was blocked.
    static let trapPerfFlagAsync: UInt32 = 1

    private final class ThreadState {
        /// The step under way (SIGTRAP blocked, or a handler being entered).
        var step: (instruction: DecodedInstruction?, before: Registers, vector: VectorState?, signal: Bool)?
        var stepsSinceSweep = 0
        /// Its perf event is disabled (it is being stepped).
        var eventDisabled = false
    }

    private func state(_ tracee: Tracee) -> ThreadState {
        if let s = tracee.observerState as? ThreadState { return s }
        let s = ThreadState()
        tracee.observerState = s
        return s
    }
    public private(set) var steps = 0

    private let instructions: InstructionCache
    private let cookie: UInt64
    private let excludeKernel: Bool
    /// tid -> perf event fd.
    private var events: [pid_t: Int32] = [:]
    /// Threads whose event is parked: disabled while their process shares nothing, enabled
    /// again at its next fork (a pre-fork server or a shell opened and closed one per child);
    /// without a filter that holds traps back only (`parkEvent`).
    private var parked: Set<pid_t> = []
    public private(set) var faults = 0
    /// A disabled page-fault event on our own thread, held for the whole run: while one
    /// exists the kernel keeps its software-event static key on, so opening and closing
    /// the tracees' events (each fork, each exit) does not patch kernel text on every CPU.
    private let keepAlive: Int32
    /// Lets only faults on pages that may be shared stop a thread (nil: every fault stops).
    private let filter: FaultFilter?

    public init(tracker: CowTracker, disassembler: Disassembler) {
        instructions = InstructionCache(disassembler: disassembler, processes: tracker.processes)
        cookie = UInt64.random(in: 1...UInt64.max)
        // Kernel-mode faults (the kernel's own stores) are visible to root only.
        excludeKernel = geteuid() != 0
        keepAlive = Int32(truncatingIfNeeded: cow_perf_event_open_pagefaults(cow_gettid(), 0, geteuid() != 0 ? 1 : 0, 1))
        filter = FaultFilter()
        super.init(tracker: tracker, kind: .fault)
        if let filter { tracker.ledger.onRecord = { page, added in added ? filter.add(page) : filter.remove(page) } }
    }

    deinit {
        for fd in events.values { close(fd) }
        if keepAlive >= 0 { close(keepAlive) }
    }

    /// Open perf events, for the debug report.
    public var openEvents: Int { events.count }

    /// Whether this kernel allows perf page-fault events with sigtrap (Linux 5.13+, perf
    /// permissions): probed with a disabled event on our own thread.
    public static func isAvailable() -> Bool {
        let fd = cow_perf_event_open_pagefaults(cow_gettid(), 1, geteuid() != 0 ? 1 : 0, 1)
        if fd < 0 { return false }
        close(Int32(fd))
        return true
    }

    override var stepCount: Int { steps }
    /// It steps only the few instructions a thread runs with SIGTRAP blocked, and sweeps no
    /// more often then than while it runs: the kernel's stores while it steps (rseq, a signal
    /// frame) are checked by the step itself, other threads' by their own events. (Full
    /// sweeps of a Python heap every 64 steps of a starting thread cost more than the run.)
    override var sweepsWhileStepping: Bool { false }
    override var kernelFaultsTrapped: Bool { !excludeKernel }

    /// A thread without its perf event (perf_event_open refused): its copies are found at
    /// syscall stops only, by full sweeps.
    override func userWritesUnwatched(_ tracee: Tracee) -> Bool { events[tracee.tid] == nil }

    // MARK: Events

    override func sharingStarted(_ pid: pid_t, tracer: Tracer) {
        for tracee in tracer.tracees.values where tracee.tgid == pid { openEvent(tracee.tid) }
    }

    private func openEvent(_ tid: pid_t) {
        idle.remove(tid)
        if parked.contains(tid), let fd = events[tid] {
            // Enabled before the thread runs again: nothing it writes from now on is missed.
            if cow_perf_event_enable(fd, 1) == 0 {
                parked.remove(tid)
                return
            }
            closeEvent(tid)
        }
        guard events[tid] == nil else { return }
        let fd = cow_perf_event_open_pagefaults(tid, cookie, excludeKernel ? 1 : 0, 0)
        if fd >= 0 {
            events[tid] = Int32(fd)
            filter?.attach(toEvent: Int32(fd))
        } else {
            tracker.stream.note("perf_event_open on \(tid): \(ErrnoNames.message(errno)); its user-mode copies are found at syscalls only")
        }
    }

    private func closeEvent(_ tid: pid_t) {
        parked.remove(tid)
        idle.remove(tid)
        if let fd = events.removeValue(forKey: tid) { close(fd) }
    }

    /// Nothing shared any more: the thread runs at full speed with its event off (a
    /// disabled event counts and traps nothing), kept for the process's next fork. Behind a
    /// filter that holds traps back the event is turned off at the next tick instead, if the
    /// process still shares nothing then: until then none of its pages is marked, so its
    /// faults stop nothing (a page of another process's at the same address may, and is let
    /// go), and a shell's next child comes sooner. Turning it off and on at every child cost
    /// two ioctls (~14 us each: many_children); left on for good, its program's every page
    /// fault runs the filter (~0.1 us: 8% of a first touch). Not one a step turned off
    /// (SIGTRAP blocked): the thread's state that knows it is off goes now, and the next fork
    /// turns on only parked events.
    private func parkEvent(_ tracee: Tracee) {
        let tid = tracee.tid
        guard events[tid] != nil, !parked.contains(tid) else { return }
        let steppedOff = (tracee.observerState as? ThreadState)?.eventDisabled == true
        if filter?.holdsTrapsBack == true && periodicTicks && !steppedOff {
            idle.insert(tid)
        } else {
            turnOff(tid)
        }
    }

    private func turnOff(_ tid: pid_t) {
        guard let fd = events[tid], !parked.contains(tid) else { return }
        if cow_perf_event_enable(fd, 0) == 0 { parked.insert(tid) } else { closeEvent(tid) }
    }

    /// Threads whose process shares nothing, their events still on until the next tick.
    private var idle: Set<pid_t> = []

    public override func ticked(tracer: Tracer) {
        let waiting = idle
        idle.removeAll()
        for tid in waiting {
            guard let tracee = tracer.tracees[tid], !tracker.shares(tracee.tgid) else { continue }
            turnOff(tid)
        }
        super.ticked(tracer: tracer)
    }

    private func setEvent(_ tracee: Tracee, _ thread: ThreadState, enabled: Bool) {
        guard thread.eventDisabled == enabled, let fd = events[tracee.tid] else { return }
        if cow_perf_event_enable(fd, enabled ? 1 : 0) == 0 { thread.eventDisabled = !enabled }
    }

    public override func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if isHeld(tracee) { return .hold }
        signalDelivered(tracee, signal)
        guard tracker.shares(tracee.tgid) else {
            parkEvent(tracee)  // nothing shared any more: full speed
            tracee.observerState = nil
            masks.restoreAfterStep(tracee.tid)  // a step cut short by this stop is abandoned
            // Running free, its syscalls no longer stop it (-q): its mask may change unseen.
            // Inside a syscall it stops at the exit first (a fork's parent, before its ledger).
            if tracee.inFlight == nil { masks.invalidate(tracee.tid) }
            return .run
        }
        openEvent(tracee.tid)  // a thread created since sharing began
        let thread = state(tracee)
        // Between a syscall's entry and exit stops: PTRACE_SYSCALL, or the exit stop is lost.
        if tracee.inFlight != nil { return .syscall }
        if signal != 0 {
            // The handler may run with SIGTRAP blocked (its sa_mask): stop at its first
            // instruction to read the mask it runs with.
            guard CowEngine.hasHandler(tracee.tgid, signal), let regs = thread.step?.before ?? (try? Ptrace.registers(tracee.tid)) else {
                return .syscall
            }
            // Off while the kernel writes the frame: a fault there would queue a trap that,
            // with SIGTRAP in the handler's mask, comes late; the step's sweep finds it.
            setEvent(tracee, thread, enabled: false)
            thread.step = (nil, regs, nil, true)
            return .singleStep
        }
        guard masks.blocksTrap(tracee.tid) else {
            thread.step = nil
            setEvent(tracee, thread, enabled: true)
            return .syscall
        }
        // SIGTRAP blocked: a perf trap would come late. Step, with the event off.
        setEvent(tracee, thread, enabled: false)
        guard let regs = try? Ptrace.registers(tracee.tid) else { return .syscall }
        let instruction = instructions.instruction(at: UInt64(regs.rip), in: tracee.tgid, memory: tracer.memory(of: tracee.tgid))
        if instruction?.isSyscall == true {
            thread.step = nil
            return .syscall  // its exit stop is swept, and shows the mask it leaves
        }
        let vector = instruction?.needsVectorState == true ? try? VectorState.read(tracee.tid) : nil
        thread.step = (instruction, regs, vector, false)
        masks.unblockTrapForStep(tracee.tid)
        return .singleStep
    }

    /// A single step of ours ended: TRAP_BRKPT or TRAP_TRACE, or the stop at a handler's
    /// entry (ptrace_notify: si_code SIGTRAP).
    private func stepped(_ tracee: Tracee, _ thread: ThreadState, tracer: Tracer) {
        guard let step = thread.step else { return }
        thread.step = nil
        steps += 1
        masks.restoreAfterStep(tracee.tid)
        if step.signal { masks.invalidate(tracee.tid) }
        guard let after = try? Ptrace.registers(tracee.tid), tracker.shares(tracee.tgid) else { return }
        attributeStep(tracee, instruction: step.instruction, signal: step.signal, before: step.before, after: after,
                      vector: step.vector, stepsSinceSweep: &thread.stepsSinceSweep)
        fireBreak(tracee, tracer: tracer)
    }

    // MARK: Faults

    public override func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool {
        if let thread = tracee.observerState as? ThreadState, thread.step != nil, Self.stepCodes.contains(info.code) {
            stepped(tracee, thread, tracer: tracer)
            return true
        }
        guard info.code == Self.trapPerf, info.perfData == cookie else { return false }  // the program's own SIGTRAP
        faults += 1
        let pid = tracee.tgid
        let page = info.address & ~4095
        guard tracker.ledger.record(pid, page) != nil else { return true }
        if info.perfFlags & Self.trapPerfFlagAsync != 0 {
            // Raised while SIGTRAP was blocked and delivered only now: RIP is wherever the
            // thread unblocked it, not the store. Never attribute from it.
            tracker.check(pid, pages: [page], dropReason: "exit", origin: CowTracker.Origin(tid: tracee.tid, regs: nil),
                          siblingsMayHaveWritten: false) { _ in
                .unknown(note: "copied while the thread blocked SIGTRAP; its page-fault trap came late, at \(hex(info.address))")
            }
            return true
        }
        guard let regs = try? Ptrace.registers(tracee.tid) else { return true }
        let rseq = rseqPage(tracee)
        // The faulting instruction has not completed: the registers are its "before" state.
        let instruction = instructions.instruction(at: UInt64(regs.rip), in: pid, memory: tracer.memory(of: pid))
        var once = regs
        if instruction?.repeated == true && once.rcx > 0 { once.rcx -= 1 }  // the iteration that faulted
        let vector = instruction?.needsVectorState == true ? try? VectorState.read(tracee.tid) : nil
        let writes = instruction?.writeSet(before: regs, after: once, vector: vector) ?? .notComputable("undecodable instruction")
        // A page the instruction does not write was written by the kernel (a kernel-mode
        // fault is reported on the way back to user mode, where RIP is only where it resumes).
        tracker.check(pid, pages: [page], dropReason: "exit", origin: CowTracker.Origin(tid: tracee.tid, regs: regs),
                      siblingsMayHaveWritten: false) { page in
            // Which pages it only reads matters only if it does not store to this one.
            let touched = writes.range(on: page) == nil ? instruction?.touchedPages(before: regs) ?? [] : []
            return CowEngine.cause(of: page, instruction: instruction, writes: writes, touched: touched, rseq: rseq)
        }
        if instruction?.writesMemory == true && tracker.watchesReuse(pid) {
            tracker.checkReuse(pid, pages: writes.pages, ip: instruction?.address)
        }
        fireBreak(tracee, tracer: tracer, completeStore: true)
        return true
    }

    public override func ownsSignal(_ tracee: Tracee, info: SignalDetails) -> Bool {
        guard info.signal == SIGTRAP else { return false }
        if (tracee.observerState as? ThreadState)?.step != nil && Self.stepCodes.contains(info.code) { return true }
        return info.code == Self.trapPerf && info.perfData == cookie
    }

    /// Closed before the thread is let go: an event left open would trap it with nobody
    /// to suppress the SIGTRAP.
    public override func willDetach(_ tracee: Tracee, tracer: Tracer) {
        closeEvent(tracee.tid)
        super.willDetach(tracee, tracer: tracer)
    }

    override func codeChanged(_ pid: pid_t) { instructions.invalidate(pid) }

    /// The kernel took the program's events off at exec (remove_on_exec): a parked one
    /// enabled at its next fork would count nothing.
    public override func execed(_ tracee: Tracee, tracer: Tracer) {
        for tid in Array(events.keys) where tracer.tracees[tid].map({ $0.tgid == tracee.tgid }) ?? true { closeEvent(tid) }
        super.execed(tracee, tracer: tracer)
    }

    override func threadGone(_ tracee: Tracee) {
        closeEvent(tracee.tid)
        tracee.observerState = nil
    }

    override func steppedByHand(_ tracee: Tracee) { (tracee.observerState as? ThreadState)?.step = nil }

    public override func finished(tracer: Tracer) {
        tracker.finish(engine: kind, steps: steps, faults: faults, sweeps: sweepCounts)
    }
}
