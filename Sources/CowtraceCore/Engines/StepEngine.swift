import CCowtrace
import Glibc

/// The reference engine: every thread of every process that still shares pages is
/// single-stepped; after each step the pages the instruction could have changed are
/// re-read, and each changed frame is attributed to that instruction only if its computed
/// write set touches the page, else to the kernel. Processes with nothing shared run freely.
public final class StepEngine: TraceObserver {
    public let tracker: CowTracker
    private let instructions: InstructionCache
    private let maxSteps: Int?
    public private(set) var steps = 0
    /// Steps issued (some may still be under way): what --max-steps bounds.
    private var stepsIssued = 0
    private var warnedMaxSteps = false

    /// A full re-read of the process's shared pages every this many steps: a safety net for
    /// kernel writes no instruction predicts.
    static let sweepInterval = 64

    private final class ThreadState {
        /// Registers before the next step (valid while the thread has not run since).
        var before: Registers?
        /// The step under way: its instruction and whether a signal is delivered with it.
        var pending: (instruction: DecodedInstruction?, signal: Bool)?
        /// The page holding the thread's registered rseq area (nil: none), looked up once.
        var rseqPage: UInt64??
        var stepsSinceSweep = 0
    }

    private var threads: [pid_t: ThreadState] = [:]
    private var stepTrapCodes: Set<Int32> = [1, 2]
    /// Snapshots taken at clone entry, by the parent's tid.
    private var snapshots: [pid_t: CowTracker.Snapshot] = [:]
    /// New processes not to run until their parent's clone exit has built the ledger.
    private var held: Set<pid_t> = []
    private var firstStopSeen: Set<pid_t> = []
    private var awaitingLedger: Set<pid_t> = []
    private var knownChildren: Set<pid_t> = []
    /// What each child's clone asked for: its CLONE_CHILD_SETTID store may land any time
    /// before the child's first instruction.
    private var requests: [pid_t: CloneRequest] = [:]

    public init(tracker: CowTracker, disassembler: Disassembler, maxSteps: Int?) {
        self.tracker = tracker
        self.instructions = InstructionCache(disassembler: disassembler)
        self.maxSteps = maxSteps
    }

    private func state(_ tracee: Tracee) -> ThreadState {
        if let s = tracee.observerState as? ThreadState { return s }
        let s = ThreadState()
        tracee.observerState = s
        threads[tracee.tid] = s
        return s
    }

    private var stepBudgetLeft: Bool { maxSteps.map { stepsIssued < $0 } ?? true }

    // MARK: Syscalls

    public func syscallEntered(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?, tracer: Tracer) {
        let thread = state(tracee)
        thread.before = nil
        if tracker.shares(tracee.tgid) {
            // Between the last step and this entry only the return to user mode ran (the
            // `syscall` instruction itself stores nothing).
            let rseq = rseqPage(tracee, thread)
            let stepping = stepBudgetLeft
            tracker.sweep(tracee.tgid, dropReason: call.name) { page in
                if page == rseq { return .kernel(detail: "rseq") }
                return stepping ? .kernel(detail: nil) : .unknown(note: "found at \(call.name) entry after --max-steps")
            }
        }
        if let clone, !clone.sharesMemory {
            snapshots[tracee.tid] = tracker.snapshot(parent: tracee.tgid)
        }
    }

    public func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer) {
        state(tracee).before = nil
        if let clone, let snapshot = snapshots.removeValue(forKey: tracee.tid), case .value(let value) = outcome, value > 0 {
            let child = pid_t(value)
            tracker.cloneCompleted(snapshot, child: child, request: clone)
            awaitingLedger.remove(child)
            release(child, tracer: tracer)
        }
        if tracker.shares(tracee.tgid) {
            let name = call.name
            let origin = (try? Ptrace.registers(tracee.tid)).map { CowTracker.Origin(tid: tracee.tid, regs: $0) }
            tracker.sweep(tracee.tgid, dropReason: name, origin: origin) { _ in
                .syscall(name: name, line: name)
            }
        }
        switch call.name {
        case "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "pkey_mprotect", "shmat", "shmdt":
            tracker.mappingsChanged(tracee.tgid)
            instructions.invalidate(tracee.tgid)
        default:
            break
        }
    }

    // MARK: New processes

    public func created(_ child: Tracee, by parent: Tracee, request: CloneRequest?, tracer: Tracer) {
        knownChildren.insert(child.tid)
        if let request { requests[child.tid] = request }
        if let request, !request.sharesMemory, snapshots[parent.tid] != nil {
            awaitingLedger.insert(child.tid)
        } else {
            release(child.tid, tracer: tracer)
        }
    }

    public func firstStop(_ tracee: Tracee, tracer: Tracer) {
        firstStopSeen.insert(tracee.tid)
        let isNewProcess = tracee.tid == tracee.tgid && !tracee.isInitial
        if isNewProcess && (awaitingLedger.contains(tracee.tid) || !knownChildren.contains(tracee.tid)) {
            held.insert(tracee.tid)
            return
        }
        checkFirstStop(tracee.tgid)
    }

    /// Before the child's first instruction only the kernel has run in it: a copy of the
    /// page holding child_tidptr is its CLONE_CHILD_SETTID store; anything else is unknown.
    private func checkFirstStop(_ pid: pid_t) {
        let request = requests.removeValue(forKey: pid)
        guard tracker.shares(pid) else { return }
        let tidPage = request.flatMap { $0.flags.contains(.childSettid) ? $0.childTidPointer : nil }
        tracker.sweep(pid, dropReason: "exit") { page in
            if let tidPage, page == tidPage & ~4095 { return .clone(flag: "CLONE_CHILD_SETTID", pointer: tidPage) }
            return .unknown(note: "copied in the child before its first instruction")
        }
    }

    private func release(_ tid: pid_t, tracer: Tracer) {
        guard held.contains(tid), !awaitingLedger.contains(tid), knownChildren.contains(tid) else { return }
        held.remove(tid)
        if let tracee = tracer.tracees[tid] {
            checkFirstStop(tracee.tgid)
            tracer.resume(tracee)
        }
    }

    // MARK: Stepping

    public func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if held.contains(tracee.tid) { return .hold }
        // Between a syscall's entry and exit stops: PTRACE_SYSCALL, or the exit stop is lost.
        if tracee.inFlight != nil { return .syscall }
        guard tracker.shares(tracee.tgid) else { return .syscall }
        let thread = state(tracee)
        // A step interrupted by a signal stop is issued again, not counted again.
        guard stepBudgetLeft || thread.pending != nil else {
            if !warnedMaxSteps {
                warnedMaxSteps = true
                tracker.reporter.note(tracee.tid, "--max-steps \(maxSteps!) reached: later splits are found at syscall stops, cause unknown")
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
        if instruction?.isSyscall == true && (signal == 0 || !Self.hasHandler(tracee.tgid, signal)) {
            if thread.pending != nil { stepsIssued -= 1 }
            thread.pending = nil
            return .syscall
        }
        if thread.pending == nil { stepsIssued += 1 }
        thread.pending = (instruction, signal != 0)
        return .singleStep
    }

    /// A step over an instruction that cannot trap by itself: the SIGTRAP is ours.
    public func ownTrap(_ tracee: Tracee, tracer: Tracer) -> Bool {
        let thread = state(tracee)
        guard let pending = thread.pending, let instruction = pending.instruction, !instruction.canRaiseTrap else { return false }
        thread.pending = nil
        completeStep(tracee, thread, pending)
        return true
    }

    public func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool {
        let thread = state(tracee)
        // TRAP_BRKPT (1) or TRAP_TRACE (2): the single-step trap we asked for.
        guard let pending = thread.pending, info.code == 1 || info.code == 2 else { return false }
        thread.pending = nil
        completeStep(tracee, thread, pending)
        return true
    }

    private func completeStep(_ tracee: Tracee, _ thread: ThreadState, _ pending: (instruction: DecodedInstruction?, signal: Bool)) {
        steps += 1
        let after = try? Ptrace.registers(tracee.tid)
        defer { thread.before = after }
        guard let before = thread.before, let after, tracker.shares(tracee.tgid) else { return }
        stepDone(tracee, thread, instruction: pending.instruction, signal: pending.signal, before: before, after: after)
    }

    private func stepDone(_ tracee: Tracee, _ thread: ThreadState, instruction: DecodedInstruction?, signal: Bool,
                          before: Registers, after: Registers) {
        let pid = tracee.tgid
        let rseq = rseqPage(tracee, thread)
        thread.stepsSinceSweep += 1
        // The common case, without allocating: which shared pages could this step have
        // changed? Usually none, and nothing is read.
        if let instruction, !signal, !instruction.repeated, instruction.kind != .notComputable,
           thread.stepsSinceSweep < Self.sweepInterval {
            var shared: [UInt64] = []
            let sharedPages = tracker.ledger.sharedPagesView(of: pid)
            func consider(_ page: UInt64) {
                if sharedPages?[page] != nil && !shared.contains(page) { shared.append(page) }
            }
            instruction.forEachAccessedPage(before: before, consider)
            if let rseq { consider(rseq) }
            if shared.isEmpty {
                if instruction.writesMemory && tracker.watchesReuse(pid) {
                    tracker.checkReuse(pid, pages: instruction.writeSet(before: before, after: after).pages, ip: instruction.address)
                }
                return
            }
        }
        let writes = instruction?.writeSet(before: before, after: after) ?? .notComputable("undecodable instruction")
        let touched = instruction?.touchedPages(before: before) ?? []
        // The kernel wrote a signal frame below the interrupted stack pointer before the
        // handler's first instruction ran.
        let frameLow = (min(UInt64(after.rsp), UInt64(before.rsp)) &- 128) & ~4095
        let frameHigh = UInt64(before.rsp)
        let cause: (UInt64) -> SplitCause = { page in
            if page == rseq { return .kernel(detail: "rseq") }
            if signal && page >= frameLow && page < frameHigh { return .kernel(detail: "signal frame") }
            switch writes {
            case .notComputable(let what):
                return .unknown(note: "\(what): write set not computable")
            case .ranges:
                if let range = writes.range(on: page), let instruction {
                    return .instruction(InstructionWrite(ip: instruction.address, bytes: instruction.bytes, text: instruction.text,
                                                         address: range.address, size: range.size))
                }
                if touched.contains(page), let instruction {
                    return .unknown(note: "'\(instruction.text)' addresses this page but capstone reports no write")
                }
                return .kernel(detail: nil)
            }
        }
        var fullSweep = signal || thread.stepsSinceSweep >= Self.sweepInterval
        if case .notComputable = writes { fullSweep = true }
        if fullSweep {
            thread.stepsSinceSweep = 0
            tracker.sweep(pid, dropReason: "exit", origin: CowTracker.Origin(tid: tracee.tid, regs: before), cause: cause)
        } else {
            var candidates = writes.pages.union(touched)
            if let rseq { candidates.insert(rseq) }
            tracker.check(pid, pages: candidates, dropReason: "exit", origin: CowTracker.Origin(tid: tracee.tid, regs: before), cause: cause)
        }
        if instruction?.writesMemory == true {
            tracker.checkReuse(pid, pages: writes.pages, ip: instruction?.address)
        }
    }

    /// Whether the process catches `signal` (SigCgt in /proc/PID/status).
    static func hasHandler(_ pid: pid_t, _ signal: Int32) -> Bool {
        guard let bytes = try? readWholeFile("/proc/\(pid)/status", pid: pid) else { return true }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("SigCgt:") {
            guard let mask = UInt64(line.dropFirst(7).filter { !$0.isWhitespace }, radix: 16) else { return true }
            return mask & (1 << UInt64(signal - 1)) != 0
        }
        return true
    }

    private func rseqPage(_ tracee: Tracee, _ thread: ThreadState) -> UInt64? {
        if let known = thread.rseqPage { return known }
        let config = try? Ptrace.rseqConfiguration(tracee.tid)
        let page: UInt64? = (config?.rseq_abi_pointer).flatMap { $0 == 0 ? nil : $0 & ~4095 }
        thread.rseqPage = .some(page)
        return page
    }

    // MARK: Exec and exit

    public func execed(_ tracee: Tracee, tracer: Tracer) {
        tracker.processGone(tracee.tgid, reason: "exec")
        tracker.addressSpaceReplaced(tracee.tgid)
        instructions.invalidate(tracee.tgid)
        for (tid, t) in threads where tracer.tracees[tid]?.tgid == tracee.tgid { t.before = nil; t.rseqPage = nil; t.pending = nil }
    }

    public func gone(_ tracee: Tracee, tracer: Tracer) {
        threads[tracee.tid] = nil
        held.remove(tracee.tid)
        requests[tracee.tid] = nil
        if !tracer.tracees.values.contains(where: { $0.tgid == tracee.tgid }) {
            tracker.processGone(tracee.tgid, reason: "exit")
            instructions.invalidate(tracee.tgid)
        }
    }

    public func sharedPageCount(child: pid_t) -> Int? {
        tracker.reporter.summary.clones.last { $0.child == child }?.total
    }

    public func finished(tracer: Tracer) {
        tracker.reporter.finish(engine: "step", steps: steps, stillShared: tracker.ledger.totalShared)
    }
}
