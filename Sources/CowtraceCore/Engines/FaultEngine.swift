import CCowtrace
import Glibc

/// The fast engine: every thread of a process that shares pages carries a perf software
/// page-fault event with sigtrap, so it stops only when it faults (the copy is made by then,
/// RIP is the faulting instruction). The faulting page is checked in the ledger; a changed
/// frame is the faulting instruction's doing only if that instruction writes the page,
/// otherwise the kernel's (its rseq update, or a store on the way back to user mode).
/// Syscall exits sweep the shared pages as in the step engine. Native speed in between.
public final class FaultEngine: CowEngine {
    /// si_code of a perf sigtrap.
    static let trapPerf = Int32(cow_TRAP_PERF)

    private let instructions: InstructionCache
    private let cookie: UInt64
    private let excludeKernel: Bool
    /// tid -> perf event fd.
    private var events: [pid_t: Int32] = [:]
    public private(set) var faults = 0
    /// A disabled page-fault event on our own thread, held for the whole run: while one
    /// exists the kernel keeps its software-event static key on, so opening and closing
    /// the tracees' events (each fork, each exit) does not patch kernel text on every CPU.
    private let keepAlive: Int32


    public init(tracker: CowTracker, disassembler: Disassembler) {
        instructions = InstructionCache(disassembler: disassembler)
        cookie = UInt64.random(in: 1...UInt64.max)
        // Kernel-mode faults (the kernel's own stores) are visible to root only.
        excludeKernel = geteuid() != 0
        keepAlive = Int32(truncatingIfNeeded: cow_perf_event_open_pagefaults(cow_gettid(), 0, geteuid() != 0 ? 1 : 0, 1))
        super.init(tracker: tracker, kind: .fault)
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

    override var stepCount: Int { 0 }

    /// A thread without its perf event (perf_event_open refused): its copies are found at
    /// syscall stops only, by full sweeps.
    override func userWritesUnwatched(_ tracee: Tracee) -> Bool { events[tracee.tid] == nil }

    // MARK: Events

    override func sharingStarted(_ pid: pid_t, tracer: Tracer) {
        for tracee in tracer.tracees.values where tracee.tgid == pid { openEvent(tracee.tid) }
    }

    private func openEvent(_ tid: pid_t) {
        guard events[tid] == nil else { return }
        let fd = cow_perf_event_open_pagefaults(tid, cookie, excludeKernel ? 1 : 0, 0)
        if fd >= 0 {
            events[tid] = Int32(fd)
        } else {
            tracker.stream.note("perf_event_open on \(tid): \(ErrnoNames.message(errno)); its user-mode copies are found at syscalls only")
        }
    }

    private func closeEvent(_ tid: pid_t) {
        if let fd = events.removeValue(forKey: tid) { close(fd) }
    }

    public override func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if held.contains(tracee.tid) || isHeldForFork(tracee) { return .hold }
        signalDelivered(tracee, signal)
        if tracker.shares(tracee.tgid) {
            openEvent(tracee.tid)  // a thread created since sharing began
            return .syscall
        }
        if events[tracee.tid] != nil { closeEvent(tracee.tid) }  // nothing shared any more: full speed
        return .run
    }

    // MARK: Faults

    public override func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool {
        guard info.code == Self.trapPerf, info.perfData == cookie else { return false }  // the program's own SIGTRAP
        faults += 1
        let pid = tracee.tgid
        let page = info.address & ~4095
        guard tracker.ledger.record(pid, page) != nil, let regs = try? Ptrace.registers(tracee.tid) else { return true }
        let rseq = rseqPage(tracee)
        // The faulting instruction has not completed: the registers are its "before" state.
        let instruction = instructions.instruction(at: UInt64(regs.rip), in: pid, memory: tracer.memory(of: pid))
        var once = regs
        if instruction?.repeated == true && once.rcx > 0 { once.rcx -= 1 }  // the iteration that faulted
        let writes = instruction?.writeSet(before: regs, after: once) ?? .notComputable("undecodable instruction")
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
        info.signal == SIGTRAP && info.code == Self.trapPerf && info.perfData == cookie
    }

    /// Closed before the thread is let go: an event left open would trap it with nobody
    /// to suppress the SIGTRAP.
    public override func willDetach(_ tracee: Tracee, tracer: Tracer) {
        closeEvent(tracee.tid)
        super.willDetach(tracee, tracer: tracer)
    }

    override func codeChanged(_ pid: pid_t) { instructions.invalidate(pid) }

    override func threadGone(_ tracee: Tracee) { closeEvent(tracee.tid) }

    public override func finished(tracer: Tracer) {
        tracker.finish(engine: kind, steps: 0, faults: faults, sweeps: sweepCounts)
    }
}
