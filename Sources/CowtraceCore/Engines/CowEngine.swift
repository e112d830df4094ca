import CCowtrace
import Glibc

/// What the step and fault engines share: snapshots at clone entry, the ledger built at clone
/// exit, new children held until then, the sweep at every syscall stop (the kernel's writes
/// inside syscalls), drops at exec and exit, and the summary. Subclasses decide how user-mode
/// writes are caught between syscalls.
public class CowEngine: TraceObserver, StopArbiter {
    public let tracker: CowTracker
    /// The loop this engine observes (set by `connect`), which owns the engine (its
    /// observer): unowned, not weak. A weakly referenced object's every retain and release
    /// goes through its side table, and the tracer is handed to every hook (~19% of the
    /// tracing thread's user time at a syscall stop went to swift's slow refcount paths).
    private(set) unowned var tracer: Tracer?
    let kind: EngineKind

    /// Fork-like clones under way, by the tid of the thread making each.
    private var clones: [pid_t: CloneInFlight] = [:]
    /// New processes (and threads) from their creation to their first instruction, by tid.
    private var newborns: [pid_t: NewProcess] = [:]
    /// Threads at their exit event: they only die (holding one could hold the whole exit).
    private var exitingThreads: Set<pid_t> = []

    /// Whether a new process is held stopped, waiting for its ledger or its announcement.
    var holdsNewProcesses: Bool { newborns.values.contains { $0.isHeld } }

    /// Whether this thread must stay stopped: a new process waiting for its ledger or its
    /// announcement, or a sibling of a thread inside a fork-like clone.
    func isHeld(_ tracee: Tracee) -> Bool {
        if newborns[tracee.tid]?.isHeld == true { return true }
        guard !exitingThreads.contains(tracee.tid) else { return false }
        return clones.contains { $0.value.holdsSiblings && $0.key != tracee.tid && $0.value.snapshot.parent == tracee.tgid }
    }
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
        if signal != 0 && !kernelFaultsTrapped && tracker.shares(tracee.tgid) { sweepOwed.insert(tracee.tgid) }
    }

    /// Whether the kernel's own stores into shared pages stop the thread by themselves (the
    /// fault engine's events count kernel-mode faults, as root): then a signal frame's copy
    /// is reported by its fault, and no sweep is owed for it.
    var kernelFaultsTrapped: Bool { false }

    /// At a syscall entry: what changed since the last stop. The rseq page (the kernel
    /// rewrites it on every return to user mode) is read unless the kernel's own stores stop
    /// the thread by themselves (the fault engine, as root: its rseq update faults); every
    /// shared page only when the call's stores cannot be bounded (so its exit sweep blames
    /// nothing earlier on it) or a sweep is owed.
    private func entrySweep(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?) {
        let pid = tracee.tgid
        let before = causeBeforeSyscall(tracee, call)
        if case .anywhere = SyscallStores.changed(call, .value(0), clone: clone) {
            fullSweep(tracee, call, before)
        } else if sweepOwed.contains(pid) || userWritesUnwatched(tracee) {
            fullSweep(tracee, call, before)
        } else if !kernelFaultsTrapped, let rseq = rseqPage(tracee) {
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
        if tracker.shares(tracee.tgid) { entrySweep(tracee, call, clone: clone) }
        if let clone, !clone.sharesMemory {
            // The other threads stay stopped until the ledger is built at clone exit: what
            // they would write right after the fork would go unwatched. Stopped before the
            // snapshot, each of them in a stop, they run nothing until then: the process is as
            // still as a single thread inside clone, whose pages are not read again at its exit.
            let siblings = tracer.tracees.values.contains(where: { $0.tgid == tracee.tgid && $0.tid != tracee.tid })
            if siblings { tracer.pauseThreads(of: tracee.tgid, except: tracee.tid) }
            // (A break's prompt may step a thread: then the pages are read again.)
            let still = tracker.breaker == nil
                && (!siblings || !exitingThreads.contains { tracer.tracees[$0]?.tgid == tracee.tgid } && tracer.othersStopped(of: tracee.tgid, except: tracee.tid))
            clones[tracee.tid] = CloneInFlight(snapshot: tracker.snapshot(parent: tracee.tgid), takenLate: tracer.lateEntry,
                                               holdsSiblings: siblings, parentStill: still)
        }
        fireBreak(tracee, tracer: tracer)
    }

    /// The clone of a forking thread is over (or the thread is gone): its siblings go on.
    private func forkDone(_ tracee: Tracee, tracer: Tracer) {
        guard let done = clones.removeValue(forKey: tracee.tid), done.holdsSiblings else { return }
        tracer.resumeThreads(of: tracee.tgid)
    }

    public func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer) {
        if SignalMasks.changingSyscalls.contains(call.name) { masks.invalidate(tracee.tid) }
        var child: pid_t?
        if let clone, let inFlight = clones[tracee.tid], case .value(let value) = outcome, value > 0 {
            child = pid_t(value)
            tracker.cloneCompleted(inFlight.snapshot, child: pid_t(value), request: clone, parentStill: inFlight.parentStill,
                                   parentFrames: inFlight.parentFrames, childEntries: inFlight.childEntries)
        }
        // Before a new child runs: what changed now is this syscall's doing.
        if tracker.shares(tracee.tgid) {
            let name = call.name
            // Registers are read only if the sweep finds a split to name.
            let origin = CowTracker.Origin(tid: tracee.tid, regs: nil)
            let stores = SyscallStores.of(call, outcome, clone: clone)
            var blamed: SyscallCall?
            let blame = { (_: UInt64) -> SplitCause in
                if blamed == nil { blamed = SyscallCall(name: name, line: tracer.finishedSyscallLine(tracee) ?? name) }
                return .syscall(blamed!)
            }
            switch SyscallStores.changed(call, outcome, clone: clone) {
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
            ledgerBuilt(for: child, tracer: tracer)
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

    /// A snapshot taken after the clone holds the parent's pages as they are by then: the
    /// page CLONE_PARENT_SETTID wrote is copied already, and so is any page another thread of
    /// the parent wrote meanwhile. Where the child (which has run no instruction) maps
    /// another frame, that frame is the one shared at the clone, and the parent copied it
    /// (its cause is the tid store, or unknown) — but for the page of the child's own
    /// CLONE_CHILD_SETTID store, which the child may have made already.
    private func snapshotBeforeParentStores(_ parent: Tracee, child: pid_t, request: CloneRequest, tracer: Tracer) {
        guard tracker.framesVisible, var snapshot = clones[parent.tid]?.snapshot else { return }
        let childTidPage = request.flags.contains(.childSettid) ? request.childTidPointer.map { $0 & ~4095 } : nil
        let parentTidPage = request.flags.contains(.parentSettid) ? request.parentTidPointer.map { $0 & ~4095 } : nil
        // A single thread wrote nothing between the clone and its event stop: only the kernel's
        // tid store can differ (a page copied eagerly at fork, pinned, is the child's copy).
        let siblings = tracer.tracees.values.contains { $0.tgid == parent.tgid && $0.tid != parent.tid }
        let entries = tracker.entries(child, snapshot.pages.map(\.page))
        // The parent (if still) maps what the snapshot read, not the frames shared at the clone.
        var parentFrames: [UInt64]?
        for (i, entry) in entries.enumerated() {
            guard let entry, entry.present, entry.frame != 0, entry.frame != snapshot.pages[i].frame else { continue }
            let page = snapshot.pages[i].page
            if page == childTidPage && page != parentTidPage { continue }
            if page == parentTidPage || siblings {
                if parentFrames == nil { parentFrames = snapshot.pages.map(\.frame) }
                snapshot.pages[i].frame = entry.frame
            }
        }
        clones[parent.tid]?.parentFrames = parentFrames
        clones[parent.tid]?.snapshot = snapshot
        clones[parent.tid]?.childEntries = entries
    }

    /// The parent reported the clone (its PTRACE_EVENT_FORK/VFORK/CLONE stop).
    public func created(_ child: Tracee, by parent: Tracee, request: CloneRequest?, tracer: Tracer) {
        if let request, !request.sharesMemory {
            // A forked child starts with its parent thread's signal mask and rseq registration.
            masks.inherit(child.tid, from: parent.tid)
            if let known = rseqPages[parent.tid] { rseqPages[child.tid] = known }
        }
        if clones[parent.tid]?.takenLate == true, let request {
            snapshotBeforeParentStores(parent, child: child.tid, request: request, tracer: tracer)
            clones[parent.tid]?.takenLate = false
        }
        let needsLedger = request.map { !$0.sharesMemory } == true && clones[parent.tid] != nil
        let stoppedAlready = newborns[child.tid]?.phase == .heldUnannounced
        newborns[child.tid] = NewProcess(phase: needsLedger ? (stoppedAlready ? .heldForLedger : .awaitingLedger)
                                                            : (stoppedAlready ? .heldForLedger : .awaitingFirstStop),
                                         request: request)
        if stoppedAlready && !needsLedger { ledgerBuilt(for: child.tid, tracer: tracer) }
    }

    public func firstStop(_ tracee: Tracee, tracer: Tracer) {
        let isNewProcess = tracee.tid == tracee.tgid && !tracee.isInitial
        // A new thread whose first stop comes before its creator's clone event is held like a
        // new process: only the request says which page its CLONE_CHILD_SETTID store copied.
        // (If the creator dies before reporting, so does its whole group, this thread too.)
        if !isNewProcess, !tracee.isInitial, newborns[tracee.tid] == nil, tracker.shares(tracee.tgid) {
            newborns[tracee.tid] = NewProcess(phase: .heldUnannounced, request: nil)
            return
        }
        if isNewProcess {
            switch newborns[tracee.tid]?.phase {
            case .awaitingLedger:
                newborns[tracee.tid]?.phase = .heldForLedger
                return
            case nil where !isOrphan(tracee.tid, tracer: tracer):
                newborns[tracee.tid] = NewProcess(phase: .heldUnannounced, request: nil)
                return
            default:
                break
            }
        }
        childReady(tracee, tracer: tracer)
        fireBreak(tracee, tracer: tracer)
    }

    /// Before the child's first instruction only the kernel has run in it: a copy of the
    /// page holding child_tidptr is its CLONE_CHILD_SETTID store; anything else is unknown.
    private func childReady(_ tracee: Tracee, tracer: Tracer) {
        let request = newborns.removeValue(forKey: tracee.tid)?.request
        guard tracker.shares(tracee.tgid) else { return }
        let tidPage = request.flatMap { $0.flags.contains(.childSettid) ? $0.childTidPointer : nil }
        if let request, request.sharesMemory, tracee.tid != tracee.tgid {
            // A new thread of a process that shares pages: before its first instruction the
            // kernel stored only its tid (it has no rseq area yet); its siblings' stores are
            // reported at their own stops.
            if let tidPage {
                checkedSinceSweep.insert(tracee.tgid)
                tracker.check(tracee.tgid, pages: [tidPage & ~4095], dropReason: "exit") { _ in .clone(.childSetTID, pointer: tidPage) }
            }
            sharingStarted(tracee.tgid, tracer: tracer)
            return
        }
        if request != nil && tracker.framesVisible {
            // Its frames were read at the clone's exit, after the fork: since then only the
            // kernel's CLONE_CHILD_SETTID store can have run in it.
            if let tidPage {
                tracker.check(tracee.tgid, pages: [tidPage & ~4095], dropReason: "exit") { _ in .clone(.childSetTID, pointer: tidPage) }
            }
        } else {
            tracker.sweep(tracee.tgid, dropReason: "exit") { page in
                if let tidPage, page == tidPage & ~4095 { return .clone(.childSetTID, pointer: tidPage) }
                return .unknown(note: "copied in the child before its first instruction")
            }
        }
        sharingStarted(tracee.tgid, tracer: tracer)
    }

    /// The ledger for `tid` is built: it runs once its first stop has come (now, if it is held there).
    private func ledgerBuilt(for tid: pid_t, tracer: Tracer) {
        switch newborns[tid]?.phase {
        case .awaitingLedger:
            newborns[tid]?.phase = .awaitingFirstStop
        case .heldForLedger:
            guard let tracee = tracer.tracees[tid] else { newborns[tid] = nil; return }
            childReady(tracee, tracer: tracer)
            fireBreak(tracee, tracer: tracer)
            tracer.resume(tracee)
        default:
            break
        }
    }

    public func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if isHeld(tracee) { return .hold }
        signalDelivered(tracee, signal)
        // Sharing pages: every syscall exit is swept for the kernel's writes.
        return tracker.shares(tracee.tgid) ? .syscall : .run
    }

    public func trapped(_ tracee: Tracee, info: SignalDetails, tracer: Tracer) -> Bool { false }
    public func ownTrap(_ tracee: Tracee, tracer: Tracer) -> Bool { false }
    public func ownsSignal(_ tracee: Tracee, info: SignalDetails) -> Bool { false }
    /// Processes being let go: what they shared leaves the ledger as detached, not exited.
    private var detaching: Set<pid_t> = []

    public func willDetach(_ tracee: Tracee, tracer: Tracer) {
        detaching.insert(tracee.tgid)
        // A step trap forced on a thread that blocks SIGTRAP unblocked it: the program's mask
        // back (the tracer keeps it blocked while it draws out a trap still queued).
        masks.restoreAfterStep(tracee.tid)
    }

    // MARK: Exec and exit

    /// Processes whose code files' debug info was read ahead since their exec.
    private var warmed: Set<pid_t> = []

    /// Whether `ticked` comes every 250 ms (the live progress runs): work may wait for it.
    public var periodicTicks = false

    /// While nothing is shared the tracer only waits: it reads ahead the debug info of the
    /// programs' code files (libdw decompresses a separate debug file in tens to hundreds of
    /// milliseconds: a Python server's first split after its fork waited for libpython's).
    public func ticked(tracer: Tracer) {
        guard let symbols = tracker.symbolizer, tracker.ledger.isEmpty else { return }
        for (pid, tracee) in tracer.tracees where tracee.tid == pid && !warmed.contains(pid) {
            guard let maps = try? ProcMaps.read(pid: pid) else { continue }
            symbols.warm(pid: pid, mappings: maps)
            warmed.insert(pid)
            return  // one process a tick
        }
    }

    public func execed(_ tracee: Tracee, tracer: Tracer) {
        warmed.remove(tracee.tgid)
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
        guard newborns[tid]?.isAnnounced != true, let parent = parentProcess(of: tid) else { return false }
        return !tracer.tracees.values.contains { $0.tgid == parent }
    }

    public func gone(_ tracee: Tracee, tracer: Tracer) {
        forkDone(tracee, tracer: tracer)
        exitingThreads.remove(tracee.tid)
        // What is kept for a new process ends with it (a reused pid is a new process).
        newborns[tracee.tid] = nil
        // Children held for a fork event their parent, now gone, will not report.
        for (tid, child) in newborns where child.phase == .heldUnannounced && isOrphan(tid, tracer: tracer) {
            newborns[tid] = nil
            if let orphan = tracer.tracees[tid] { tracer.resume(orphan) }
        }
        rseqPages[tracee.tid] = nil
        masks.forget(tracee.tid)
        if tracee.isLeader {
            warmed.remove(tracee.tgid)
            sweepOwed.remove(tracee.tgid)
            checkedSinceSweep.remove(tracee.tgid)
        }
        tracker.symbolizer?.forget(pid: tracee.tgid, tid: tracee.tid)
        threadGone(tracee)
        if !tracer.tracees.values.contains(where: { $0.tgid == tracee.tgid }) {
            tracker.processGone(tracee.tgid, reason: detaching.remove(tracee.tgid) != nil ? "detach" : "exit")
            codeChanged(tracee.tgid)
        }
    }

    public func sharedPageCount(child: pid_t) -> Int? { tracker.sharedPageCount(child: child) }

    /// The tracer's thread runs at a higher priority (from its first wait, after the program
    /// was launched: the program does not inherit it).
    private var prioritized = false

    public func beforeWait() {
        if !prioritized {
            prioritized = true
            // Every stop of the program waits for the tracer: starved of CPU on a busy machine
            // it holds the program (measured on Redis: the BGSAVE child held 13 ms at its exit
            // stop while the tracer waited to run). As root it runs ahead of the program, ten
            // nice levels above cowtrace's own priority.
            if geteuid() == 0 { _ = cow_raise_priority(10) }
        }
        tracker.confirmSplits()
    }

    public func finished(tracer: Tracer) { tracker.finish(engine: kind, steps: stepCount, sweeps: sweepCounts) }

    /// Syscall exits checked at their possible stores, and full sweeps by syscall.
    var sweepCounts: CowTracker.SweepCounts { CowTracker.SweepCounts(bounded: boundedChecks, full: fullSweeps) }

    // MARK: Helpers

    /// A full re-read of the process's shared pages every this many steps: a safety net for
    /// kernel writes no instruction predicts.
    static let sweepInterval = 64

    /// Whether steps take that safety net (the step engine: stepping is all it does).
    var sweepsWhileStepping: Bool { true }

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
        let sweepDue = sweepsWhileStepping && stepsSinceSweep >= Self.sweepInterval
        if let instruction, !signal, !instruction.repeated, instruction.kind != .notComputable, instruction.irregular == nil, !sweepDue {
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
        var fullSweep = signal || sweepDue
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
