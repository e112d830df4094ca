import CCowtrace
import Glibc

/// What the step and fault engines share: snapshots at clone entry, the ledger built at clone
/// exit, new children held until then, the sweep at every syscall stop (the kernel's writes
/// inside syscalls), drops at exec and exit, and the summary. Subclasses decide how user-mode
/// writes are caught between syscalls.
public class CowEngine: TraceObserver, StopArbiter {
    public let tracker: CowTracker
    /// The loop this engine observes (set by `connect`).
    private weak var tracer: Tracer?
    let kind: EngineKind

    /// Processes with a thread inside a fork-like clone (tgid -> that thread): their other
    /// threads are held stopped meanwhile.
    private var forking: [pid_t: pid_t] = [:]

    func isHeldForFork(_ tracee: Tracee) -> Bool {
        guard let forker = forking[tracee.tgid] else { return false }
        // A thread at its exit event only dies (holding it could hold the whole exit).
        return forker != tracee.tid && !exitingThreads.contains(tracee.tid)
    }
    private var exitingThreads: Set<pid_t> = []

    /// Snapshots taken at clone entry, by the parent's tid.
    private var snapshots: [pid_t: CowTracker.Snapshot] = [:]
    /// New processes not to run until their parent's clone exit has built the ledger.
    private(set) var held: Set<pid_t> = []
    private var awaitingLedger: Set<pid_t> = []
    private var knownChildren: Set<pid_t> = []
    /// What each child's clone asked for: its CLONE_CHILD_SETTID store may land any time
    /// before the child's first instruction.
    private var requests: [pid_t: CloneRequest] = [:]
    /// Each thread's registered rseq area's page (nil inside: none).
    private var rseqPages: [pid_t: UInt64?] = [:]
    /// Whether each thread blocks SIGTRAP.
    let masks = SignalMasks()

    init(tracker: CowTracker, kind: EngineKind) {
        self.tracker = tracker
        self.kind = kind
    }

    /// Observes `tracer` and answers the tracker's questions about other threads' stops.
    public func connect(to tracer: Tracer) {
        self.tracer = tracer
        tracer.observer = self
        tracker.arbiter = self
    }

    public func settle(_ processes: Set<pid_t>, except thread: pid_t?) -> Set<pid_t> {
        tracer?.settle(processes, except: thread) ?? processes
    }

    // MARK: Hooks for the engines

    /// How a change found at a syscall entry is explained (what ran since the last stop).
    func causeBeforeSyscall(_ tracee: Tracee, _ call: SyscallArguments) -> (UInt64) -> SplitCause {
        let rseq = rseqPage(tracee)
        return { page in .kernel(page == rseq ? .rseq : nil) }
    }

    /// `pid` now shares pages: make sure every thread of it is watched.
    func sharingStarted(_ pid: pid_t, tracer: Tracer) {}

    /// The process's code or mappings changed (mmap, exec).
    func codeChanged(_ pid: pid_t) {}

    /// A thread is gone.
    func threadGone(_ tracee: Tracee) {}

    var stepCount: Int { 0 }

    /// The break prompt single-stepped this thread: what the engine knew of its registers is stale.
    func steppedByHand(_ tracee: Tracee) {}

    /// A break due after this stop's bookkeeping (--break-on-split).
    func fireBreak(_ tracee: Tracee, tracer: Tracer, completeStore: Bool = false) {
        tracker.breaker?.fireIfDue(tracee, tracer: tracer, engine: self, completeStore: completeStore)
    }

    // MARK: Syscalls

    // MARK: Sweeps

    /// Syscall exits checked only at the call's possible stores, and full sweeps (every
    /// shared page) made for calls whose stores cannot be bounded, by syscall name.
    public private(set) var boundedChecks = 0
    public private(set) var fullSweeps: [String: Int] = [:]
    /// Processes owed a full sweep before their next bounded check can be trusted: a signal
    /// was delivered (its frame is the kernel's store on the way to the handler).
    private var sweepOwed: Set<pid_t> = []
    /// Processes with bounded checks since their last full sweep: a change found by the next
    /// one may be a store those checks did not look for, so it is not blamed on the kernel.
    private var checkedSinceSweep: Set<pid_t> = []

    /// Whether the thread's user-mode writes go unseen (no perf event, steps exhausted):
    /// then only full sweeps at its syscall stops find them.
    func userWritesUnwatched(_ tracee: Tracee) -> Bool { false }

    /// A signal is delivered with this resumption: the kernel writes its frame outside any
    /// syscall, found by a full sweep at the next syscall entry.
    func signalDelivered(_ tracee: Tracee, _ signal: Int32) {
        if signal != 0 && tracker.shares(tracee.tgid) { sweepOwed.insert(tracee.tgid) }
    }

    /// At a syscall entry: what changed since the last stop. The rseq page (the kernel
    /// rewrites it on every return to user mode) is always read; every shared page only
    /// when the call's stores cannot be bounded (so its exit sweep blames nothing earlier on
    /// it) or a sweep is owed.
    private func entrySweep(_ tracee: Tracee, _ call: SyscallArguments) {
        let pid = tracee.tgid
        let before = causeBeforeSyscall(tracee, call)
        if case .anywhere = SyscallStores.changed(call, .value(0)) {
            fullSweep(tracee, call, before)
        } else if sweepOwed.contains(pid) || userWritesUnwatched(tracee) {
            fullSweep(tracee, call, before)
        } else if let rseq = rseqPage(tracee) {
            tracker.check(pid, pages: [rseq], dropReason: call.name, cause: before)
        }
    }

    private func fullSweep(_ tracee: Tracee, _ call: SyscallArguments, _ before: @escaping (UInt64) -> SplitCause) {
        let pid = tracee.tgid
        fullSweeps[call.name, default: 0] += 1
        sweepOwed.remove(pid)
        let lateFind = checkedSinceSweep.remove(pid) != nil
        let rseq = rseqPage(tracee)
        tracker.sweep(pid, dropReason: call.name) { page in
            let cause = before(page)
            // Only the rseq page's change is certain to be the kernel's own; anything else
            // found after bounded checks may be a store they did not look for.
            guard lateFind, page != rseq, case .kernel = cause else { return cause }
            return .unknown(note: "found at the full sweep at \(call.name) entry; written by the kernel outside the stores checked since the last sweep")
        }
    }

    public func syscallEntered(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?, tracer: Tracer) {
        if tracker.shares(tracee.tgid) { entrySweep(tracee, call) }
        if let clone, !clone.sharesMemory {
            // The other threads stay stopped until the ledger is built at clone exit: what
            // they would write right after the fork would go unwatched.
            if tracer.tracees.values.contains(where: { $0.tgid == tracee.tgid && $0.tid != tracee.tid }) {
                forking[tracee.tgid] = tracee.tid
                tracer.pauseThreads(of: tracee.tgid, except: tracee.tid)
            }
            snapshots[tracee.tid] = tracker.snapshot(parent: tracee.tgid)
            if tracer.lateEntry { lateSnapshots.insert(tracee.tid) }
        }
        fireBreak(tracee, tracer: tracer)
    }

    /// The clone of a forking thread is over (or the thread is gone): its siblings go on.
    private func forkDone(_ tracee: Tracee, tracer: Tracer) {
        guard forking[tracee.tgid] == tracee.tid else { return }
        forking[tracee.tgid] = nil
        tracer.resumeThreads(of: tracee.tgid)
    }

    public func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer) {
        if SignalMasks.changingSyscalls.contains(call.name) { masks.invalidate(tracee.tid) }
        var child: pid_t?
        if let clone, let snapshot = snapshots.removeValue(forKey: tracee.tid), case .value(let value) = outcome, value > 0 {
            child = pid_t(value)
            tracker.cloneCompleted(snapshot, child: pid_t(value), request: clone)
        }
        // Before a new child runs: what changed now is this syscall's doing.
        if tracker.shares(tracee.tgid) {
            let name = call.name
            // Registers are read only if the sweep finds a split to name.
            let origin = CowTracker.Origin(tid: tracee.tid, regs: nil)
            let stores = SyscallStores.of(call, outcome)
            var blamed: SyscallCall?
            let blame = { (_: UInt64) -> SplitCause in
                if blamed == nil { blamed = SyscallCall(name: name, line: tracer.finishedSyscallLine(tracee) ?? name) }
                return .syscall(blamed!)
            }
            switch SyscallStores.changed(call, outcome) {
            case .anywhere:
                // Its entry swept everything: what changed since is this call's doing.
                tracker.sweep(tracee.tgid, dropReason: name, origin: origin, stores: stores.mayWrite, cause: blame)
            case .ranges(let ranges):
                boundedChecks += 1
                checkedSinceSweep.insert(tracee.tgid)
                tracker.check(tracee.tgid, ranges: ranges, dropReason: name, origin: origin, stores: stores.mayWrite, cause: blame)
            }
        }
        if let child {
            if tracker.shares(tracee.tgid) { sharingStarted(tracee.tgid, tracer: tracer) }
            awaitingLedger.remove(child)
            release(child, tracer: tracer)
        }
        if clone != nil { forkDone(tracee, tracer: tracer) }
        switch call.name {
        case "mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "pkey_mprotect", "shmat", "shmdt":
            tracker.mappingsChanged(tracee.tgid)
            codeChanged(tracee.tgid)
        default:
            break
        }
        fireBreak(tracee, tracer: tracer)
    }

    // MARK: New processes

    /// Parents whose snapshot was taken at the clone's event stop (-q, run with PTRACE_CONT),
    /// after the kernel made the child.
    private var lateSnapshots: Set<pid_t> = []

    /// A snapshot taken after the clone holds the parent's page as CLONE_PARENT_SETTID left
    /// it (copied, if it was shared): the frame before is the one the child still maps.
    private func snapshotBeforeParentStore(_ parent: pid_t, child: pid_t, request: CloneRequest) {
        guard tracker.framesVisible, request.flags.contains(.parentSettid), let pointer = request.parentTidPointer,
              var snapshot = snapshots[parent] else { return }
        let page = pointer & ~4095
        guard let index = snapshot.pages.firstIndex(where: { $0.page == page }),
              let entry = tracker.entries(child, [page]).first ?? nil, entry.present, entry.frame != 0 else { return }
        snapshot.pages[index].frame = entry.frame
        snapshots[parent] = snapshot
    }

    public func created(_ child: Tracee, by parent: Tracee, request: CloneRequest?, tracer: Tracer) {
        if lateSnapshots.remove(parent.tid) != nil, let request { snapshotBeforeParentStore(parent.tid, child: child.tid, request: request) }
        knownChildren.insert(child.tid)
        if let request { requests[child.tid] = request }
        if let request, !request.sharesMemory, snapshots[parent.tid] != nil {
            awaitingLedger.insert(child.tid)
        } else {
            release(child.tid, tracer: tracer)
        }
    }

    public func firstStop(_ tracee: Tracee, tracer: Tracer) {
        let isNewProcess = tracee.tid == tracee.tgid && !tracee.isInitial
        if isNewProcess && (awaitingLedger.contains(tracee.tid) || !knownChildren.contains(tracee.tid)) && !isOrphan(tracee.tid, tracer: tracer) {
            held.insert(tracee.tid)
            return
        }
        childReady(tracee, tracer: tracer)
        fireBreak(tracee, tracer: tracer)
    }

    /// Before the child's first instruction only the kernel has run in it: a copy of the
    /// page holding child_tidptr is its CLONE_CHILD_SETTID store; anything else is unknown.
    private func childReady(_ tracee: Tracee, tracer: Tracer) {
        let request = requests.removeValue(forKey: tracee.tid)
        guard tracker.shares(tracee.tgid) else { return }
        let tidPage = request.flatMap { $0.flags.contains(.childSettid) ? $0.childTidPointer : nil }
        tracker.sweep(tracee.tgid, dropReason: "exit") { page in
            if let tidPage, page == tidPage & ~4095 { return .clone(.childSetTID, pointer: tidPage) }
            return .unknown(note: "copied in the child before its first instruction")
        }
        sharingStarted(tracee.tgid, tracer: tracer)
    }

    private func release(_ tid: pid_t, tracer: Tracer) {
        guard held.contains(tid), !awaitingLedger.contains(tid), knownChildren.contains(tid) else { return }
        held.remove(tid)
        if let tracee = tracer.tracees[tid] {
            childReady(tracee, tracer: tracer)
            fireBreak(tracee, tracer: tracer)
            tracer.resume(tracee)
        }
    }

    public func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if held.contains(tracee.tid) || isHeldForFork(tracee) { return .hold }
        signalDelivered(tracee, signal)
        // Sharing pages: every syscall exit is swept for the kernel's writes.
        return tracker.shares(tracee.tgid) ? .syscall : .run
    }

    public func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool { false }
    public func ownTrap(_ tracee: Tracee, tracer: Tracer) -> Bool { false }
    public func ownsSignal(_ tracee: Tracee, info: SignalDetails) -> Bool { false }
    /// Processes being let go: what they shared leaves the ledger as detached, not exited.
    private var detaching: Set<pid_t> = []

    public func willDetach(_ tracee: Tracee, tracer: Tracer) { detaching.insert(tracee.tgid) }

    // MARK: Exec and exit

    public func execed(_ tracee: Tracee, tracer: Tracer) {
        tracker.processGone(tracee.tgid, reason: "exec")
        tracker.addressSpaceReplaced(tracee.tgid)
        codeChanged(tracee.tgid)
        for (tid, other) in tracer.tracees where other.tgid == tracee.tgid { rseqPages[tid] = nil }
    }

    public func exiting(_ tracee: Tracee, tracer: Tracer) {
        exitingThreads.insert(tracee.tid)
        forkDone(tracee, tracer: tracer)  // killed inside its fork: the clone exit will not come
    }

    /// A child whose fork event will never come: its parent died (SIGKILL) between creating
    /// it and reporting the fork. Nothing traced shares its pages.
    private func isOrphan(_ tid: pid_t, tracer: Tracer) -> Bool {
        guard !knownChildren.contains(tid), let parent = parentProcess(of: tid) else { return false }
        return !tracer.tracees.values.contains { $0.tgid == parent }
    }

    public func gone(_ tracee: Tracee, tracer: Tracer) {
        forkDone(tracee, tracer: tracer)
        exitingThreads.remove(tracee.tid)
        held.remove(tracee.tid)
        // Children held for a fork event their parent, now gone, will not report.
        for tid in held where tid != tracee.tid && isOrphan(tid, tracer: tracer) {
            held.remove(tid)
            if let orphan = tracer.tracees[tid] { tracer.resume(orphan) }
        }
        requests[tracee.tid] = nil
        rseqPages[tracee.tid] = nil
        masks.forget(tracee.tid)
        if tracee.isLeader {
            sweepOwed.remove(tracee.tgid)
            checkedSinceSweep.remove(tracee.tgid)
        }
        knownChildren.remove(tracee.tid)  // a reused pid is a new process
        tracker.symbolizer?.forget(pid: tracee.tgid, tid: tracee.tid)
        threadGone(tracee)
        if !tracer.tracees.values.contains(where: { $0.tgid == tracee.tgid }) {
            tracker.processGone(tracee.tgid, reason: detaching.remove(tracee.tgid) != nil ? "detach" : "exit")
            codeChanged(tracee.tgid)
        }
    }

    public func sharedPageCount(child: pid_t) -> Int? { tracker.sharedPageCount(child: child) }

    public func beforeWait() { tracker.confirmSplits() }

    public func finished(tracer: Tracer) { tracker.finish(engine: kind, steps: stepCount, sweeps: sweepCounts) }

    /// Syscall exits checked at their possible stores, and full sweeps by syscall.
    var sweepCounts: CowTracker.SweepCounts { CowTracker.SweepCounts(bounded: boundedChecks, full: fullSweeps) }

    // MARK: Helpers

    /// A full re-read of the process's shared pages every this many steps: a safety net for
    /// kernel writes no instruction predicts.
    static let sweepInterval = 64

    /// One instruction of `tracee` ran (a single step) from `before` to `after`: the pages it
    /// could have changed are re-read and each change attributed to it when its write set
    /// touches the page, else to the kernel (`signal`: a signal frame was written first).
    func attributeStep(_ tracee: Tracee, instruction: DecodedInstruction?, signal: Bool, before: Registers, after: Registers,
                       vector: VectorState?, stepsSinceSweep: inout Int) {
        let pid = tracee.tgid
        let rseq = rseqPage(tracee)
        stepsSinceSweep += 1
        // The common case, without allocating: which shared pages could this step have
        // changed? Usually none, and nothing is read.
        if let instruction, !signal, !instruction.repeated, instruction.kind != .notComputable, instruction.irregular == nil,
           stepsSinceSweep < Self.sweepInterval {
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
        let writes = instruction?.writeSet(before: before, after: after, vector: vector) ?? .notComputable("undecodable instruction")
        let touched = instruction?.touchedPages(before: before) ?? []
        // The kernel wrote a signal frame below the interrupted stack pointer before the
        // handler's first instruction ran.
        let frameLow = (min(UInt64(after.rsp), UInt64(before.rsp)) &- 128) & ~4095
        let frameHigh = UInt64(before.rsp)
        let cause: (UInt64) -> SplitCause = { page in
            if signal && page >= frameLow && page < frameHigh && page != rseq { return .kernel(.signalFrame) }
            if signal && instruction == nil && page != rseq {
                return .unknown(note: "changed while a signal handler was entered, outside its frame")
            }
            return CowEngine.cause(of: page, instruction: instruction, writes: writes, touched: touched, rseq: rseq)
        }
        var fullSweep = signal || stepsSinceSweep >= Self.sweepInterval
        if case .notComputable = writes { fullSweep = true }
        if fullSweep {
            stepsSinceSweep = 0
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

    /// The rule both engines apply to a changed page: the kernel's rseq update comes first
    /// (it runs on every return to user mode, before the instruction); an instruction is
    /// blamed only if its computed write set touches the page; an instruction that addresses
    /// the page without storing to it, or whose write set cannot be computed, leaves the
    /// cause unknown; otherwise the kernel wrote it.
    static func cause(of page: UInt64, instruction: DecodedInstruction?, writes: WriteSet, touched: Set<UInt64>, rseq: UInt64?) -> SplitCause {
        if page == rseq { return .kernel(.rseq) }
        switch writes {
        case .notComputable(let what):
            return .unknown(note: "\(what): write set not computable")
        case .ranges:
            if let range = writes.range(on: page), let instruction {
                let runs = writes.ranges(on: page)
                return .instruction(InstructionWrite(ip: instruction.address, bytes: instruction.bytes, text: instruction.text,
                                                     address: range.address, size: range.size, ranges: runs.count > 1 ? runs : []))
            }
            if touched.contains(page), let instruction {
                return .unknown(note: "'\(instruction.text)' addresses this page but does not store to it")
            }
            return .kernel(nil)
        }
    }

    /// The page of the thread's registered rseq area, which the kernel rewrites on every
    /// return to user mode after a stop.
    func rseqPage(_ tracee: Tracee) -> UInt64? {
        if let known = rseqPages[tracee.tid] { return known }
        let config = try? Ptrace.rseqConfiguration(tracee.tid)
        let page: UInt64? = (config?.rseq_abi_pointer).flatMap { $0 == 0 ? nil : $0 & ~4095 }
        rseqPages[tracee.tid] = .some(page)
        return page
    }

    /// Without frame numbers: the processes among `processes` with a thread whose rseq area
    /// (as far as we have read it) is on `page`.
    public func rseqHolders(of page: UInt64, among processes: Set<pid_t>) -> Set<pid_t> {
        guard let tracer else { return [] }
        return Set(rseqPages.compactMap { tid, rseq in rseq == page ? tracer.tracees[tid]?.tgid : nil }).intersection(processes)
    }

    /// Whether the process catches `signal` (SigCgt in /proc/PID/status).
    static func hasHandler(_ pid: pid_t, _ signal: Int32) -> Bool { ProcFS.status(pid)?.contains(signal, in: "SigCgt") ?? true }
}
