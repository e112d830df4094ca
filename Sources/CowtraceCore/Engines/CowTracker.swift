import Glibc

/// Page bookkeeping shared by the engines: the clone-time snapshot, the ledger, re-reading
/// pagemap, and turning frame changes into splits, reuses, drops (or nothing, for migration).
/// Engines decide *when* to look and *what cause* a change gets; this decides *whether* it is a split.
public final class CowTracker {
    public let ledger = PageLedger()
    /// Where detection's final events go (the renderers are behind it).
    public let stream: EventStream
    let watch: WatchFilter
    let engine: EngineKind
    let zeroFrame: UInt64?

    /// /proc/kpageflags, for the huge-page flag of a split.
    let pageFlags = KernelPageFlags()
    /// Per process (tgid): pagemap, maps cache.
    /// Where mappings and pagemap entries are read (/proc, or a test's table).
    let pages: any PageTable
    /// The traced processes' descriptors and caches (shared with the tracer).
    public let processes: ProcessTable
    /// Pages left to exactly one process after a split: its next write reuses the frame.
    private var reuseWatch: [pid_t: [UInt64: (frame: UInt64, kind: PageKind)]] = [:]

    /// Whether pagemap shows frame numbers. Without them (no CAP_SYS_ADMIN) a copy is seen
    /// through the exclusive bit (56) and the file bit (61), and frames are stand-in tokens.
    public let framesVisible: Bool
    private var nextToken = FrameNumber.firstToken
    /// Answers what only the wait loop knows: the stops other threads have made and not yet
    /// reported, and where their rseq areas are.
    /// The engine, which owns this tracker: unowned, not weak (see `CowEngine.tracer`).
    public unowned var arbiter: (any StopArbiter)?
    /// The checks under way (nested while others settle): whether each one's cause would be
    /// a store into a given page (not a change merely seen).
    private var checking: [pid_t: (UInt64) -> Bool] = [:]
    /// The page each process is settling with the other holders.
    private var settling: [pid_t: UInt64] = [:]

    public struct Snapshot {
        let parent: pid_t
        /// page -> (frame, kind, region), for present pages of private writable mappings.
        var pages: [(page: UInt64, frame: UInt64, kind: PageKind, region: String)]
    }

    /// Names the code behind instruction and syscall causes; nil leaves backtraces empty.
    public let symbolizer: (any SymbolSource)?
    /// --break-on-split: told of every split.
    public var breaker: BreakOnSplit?

    /// Where a change was seen: the thread and its registers at that moment (for a step,
    /// before the instruction ran), so the backtrace starts at the cause. Without `regs`
    /// the thread's current registers are read, only if a split needs a backtrace.
    public struct Origin {
        public let tid: pid_t
        public let regs: Registers?
        /// Frames unwound already (the record engine's, from a perf sample's stack copy):
        /// used instead of unwinding the live thread, only if a split needs a backtrace.
        public let frames: (() -> [BacktraceFrame])?
        public init(tid: pid_t, regs: Registers?, frames: (() -> [BacktraceFrame])? = nil) {
            self.tid = tid
            self.regs = regs
            self.frames = frames
        }
    }

    public init(stream: EventStream, watch: WatchFilter, engine: EngineKind, symbolizer: (any SymbolSource)? = Symbolizer(),
                framesVisible: Bool = FrameNumber.visible, processes: ProcessTable = ProcessTable(), pages: (any PageTable)? = nil,
                zeroFrame: UInt64? = ZeroPage.frame) {
        self.processes = processes
        self.pages = pages ?? ProcPageTable(processes: processes)
        self.stream = stream
        self.framesVisible = framesVisible
        self.symbolizer = symbolizer
        self.watch = watch
        self.engine = engine
        self.zeroFrame = zeroFrame
    }

    public func shares(_ pid: pid_t) -> Bool { ledger.sharedCount(of: pid) > 0 }

    public func maps(_ pid: pid_t) -> [Mapping] { pages.maps(pid) }

    /// The address space changed shape (mmap, munmap, mprotect, brk, mremap).
    public func mappingsChanged(_ pid: pid_t) {
        pages.mappingsChanged(pid)
        symbolizer?.invalidate(pid)
    }

    /// After exec: the old address space's symbols and reuse watch go (its files are the
    /// Tracer's to reopen, once the engine's exec bookkeeping is done).
    public func addressSpaceReplaced(_ pid: pid_t) {
        symbolizer?.invalidate(pid)
        reuseWatch[pid] = nil
    }

    // MARK: Clone

    /// At clone entry: the parent's frames for its private writable mappings.
    public func snapshot(parent pid: pid_t) -> Snapshot {
        pages.mappingsChanged(pid)
        var result = Snapshot(parent: pid, pages: [])
        // Only present pages are read: a terabyte reserved and never touched costs nothing.
        for mapping in maps(pid) where mapping.isCopyOnWrite && mapping.path != "[vvar]" && mapping.path != "[vsyscall]" {
            let region = mapping.region
            pages.forEachPresent(pid, from: mapping.start, to: mapping.end) { page, entry in
                guard entry.frame != 0 || !framesVisible, watch.includes(page: page, in: mapping) else { return }
                result.pages.append((page, framesVisible ? entry.frame : token(pid, page), kind(entry), region))
            }
        }
        return result
    }

    /// Without frames: the page's stand-in, the one it shares if it is in the ledger, else a new one.
    private func token(_ pid: pid_t, _ page: UInt64) -> UInt64 {
        if let record = ledger.record(pid, page) { return record.frame }
        nextToken += 1
        return nextToken
    }

    /// Without frames: whether `entry` shows that the process no longer maps the page it
    /// shared (a file page turned anonymous, or an anonymous page turned exclusive).
    func leftSharedPage(_ entry: PagemapEntry, kind: PageKind) -> Bool {
        kind == .file ? !entry.fileOrShared : entry.exclusive
    }

    func kind(_ entry: PagemapEntry) -> PageKind {
        if let zeroFrame, entry.frame == zeroFrame { return .zero }
        return entry.fileOrShared ? .file : .anon
    }

    /// At the parent's clone exit: which snapshot pages the child shares, and which were
    /// already copied inside clone (by the kernel's CLONE_CHILD_SETTID / CLONE_PARENT_SETTID
    /// stores, or for no reason we can name).
    /// `parentStill`: the parent has run no instruction since the snapshot (taken at the
    /// clone's entry, or at its event stop; one thread, or its others stopped before it), so
    /// only the kernel's CLONE_PARENT_SETTID store can have changed its pages since: that page
    /// alone is read again. `parentFrames`: its frames at the snapshot, when the snapshot's
    /// differ (they hold the frames shared at the clone).
    /// `childEntries`: the child's entries of the snapshot's pages, read since the fork
    /// (only its CLONE_CHILD_SETTID page is read again).
    public func cloneCompleted(_ snapshot: Snapshot, child: pid_t, request: CloneRequest, parentStill: Bool = false,
                               parentFrames: [UInt64]? = nil, childEntries readBefore: [PagemapEntry?]? = nil) {
        let parent = snapshot.parent
        // Right after fork the child maps exactly what its parent maps.
        pages.inheritMappings(child: child, from: parent)
        symbolizer?.inherit(child: child, from: parent)
        var anon = 0, file = 0, zero = 0  // not a dictionary: one hash a page, 10,000 pages a fork
        let childTidPage = request.flags.contains(.childSettid) ? request.childTidPointer.map { $0 & ~4095 } : nil
        let parentTidPage = request.flags.contains(.parentSettid) ? request.parentTidPointer.map { $0 & ~4095 } : nil
        let all = snapshot.pages.map(\.page)
        let childEntries = readBefore.map { again(child, $0, tidPage: childTidPage, of: all) } ?? entries(child, all)
        // The snapshot's frames, but for the tid store's page.
        let parentEntries = parentStill && framesVisible
            ? again(parent, (parentFrames ?? snapshot.pages.map(\.frame)).map { PagemapEntry(raw: 1 << 63 | $0) }, tidPage: parentTidPage, of: all)
            : entries(parent, all)
        var splits: [Split] = []
        var shared: [(page: UInt64, frame: UInt64, kind: PageKind, region: String)] = []
        shared.reserveCapacity(snapshot.pages.count)
        for (i, p) in snapshot.pages.enumerated() {
            guard let c = childEntries[i], let now = parentEntries[i], c.present, now.present else { continue }
            // Without frames: the process that left the shared page has a new one; when
            // both did, the tid stores say which, else the child's copy is the kernel's.
            var childFrame = c.frame, parentFrame = now.frame
            if !framesVisible {
                let childLeft = leftSharedPage(c, kind: p.kind), parentLeft = leftSharedPage(now, kind: p.kind)
                let parentCopied = parentLeft && (!childLeft || p.page == parentTidPage) && p.page != childTidPage
                childFrame = childLeft && !parentCopied ? 0 : p.frame
                parentFrame = parentCopied ? 0 : p.frame
            }
            if childFrame == p.frame && parentFrame == p.frame {
                shared.append(p)
                switch p.kind {
                case .anon: anon += 1
                case .file: file += 1
                case .zero: zero += 1
                }
                continue
            }
            let before = ledger.holders(frame: p.frame, page: p.page).subtracting([parent])
            if childFrame != p.frame && parentFrame == p.frame {
                splits.append(copiedInClone(p, writer: child, other: parent, before: before, frameAfter: childFrame,
                                            tidPage: childTidPage, store: .childSetTID, pointer: request.childTidPointer, role: "child"))
            } else if parentFrame != p.frame && childFrame == p.frame {
                splits.append(copiedInClone(p, writer: parent, other: child, before: before, frameAfter: parentFrame,
                                            tidPage: parentTidPage, store: .parentSetTID, pointer: request.parentTidPointer, role: "parent"))
                // The child keeps the old frame, with whoever else still maps it.
                if ledger.record(parent, p.page) != nil { ledger.leave(parent, page: p.page) }
                ledger.share(page: p.page, frame: p.frame, kind: p.kind, region: p.region, among: [child] + Array(before))
            }
        }
        ledger.shareAll(shared, among: [parent, child])
        let sharedPages = SharedPages(parent: parent, child: child, call: request.call.rawValue,
                                      anon: anon, file: file, zero: zero)
        sharedAtClone[child] = sharedPages.total
        stream.emit(.shared(sharedPages))
        for split in splits {
            stream.emit(.split(split))
            breaker?.splitReported(split)
        }
    }

    /// Entries known for `pages`, with the kernel's tid store's page read again.
    private func again(_ pid: pid_t, _ known: [PagemapEntry?], tidPage: UInt64?, of pages: [UInt64]) -> [PagemapEntry?] {
        guard known.count == pages.count else { return entries(pid, pages) }
        var result = known
        if let tidPage, let i = pages.firstIndex(of: tidPage) { result[i] = entries(pid, [tidPage])[0] }
        return result
    }

    /// How many pages each clone left shared, until its clone event is written.
    private var sharedAtClone: [pid_t: Int] = [:]

    /// The pages `child`'s clone left shared (asked once, for its clone event).
    public func sharedPageCount(child: pid_t) -> Int? { sharedAtClone.removeValue(forKey: child) }

    /// A page copied inside clone, before either process ran: the kernel's tid store if the
    /// page holds that pointer, else a copy we cannot name.
    private func copiedInClone(_ p: (page: UInt64, frame: UInt64, kind: PageKind, region: String), writer: pid_t, other: pid_t,
                               before: Set<pid_t>, frameAfter: UInt64, tidPage: UInt64?, store: CloneStore, pointer: UInt64?,
                               role: String) -> Split {
        let cause: SplitCause = p.page == tidPage && pointer != nil
            ? .clone(store, pointer: pointer!)
            : .unknown(note: "copied in the \(role) inside clone")
        var split = Split(page: p.page, region: p.region, kind: p.kind, writer: writer, others: ([other] + before).sorted(),
                          frameBefore: p.frame, frameAfter: frameAfter, cause: cause, engine: engine)
        if framesVisible { split.hugePage = pageFlags.isTransparentHuge(p.frame) }
        return split
    }

    /// Entries read in bulk for a batch of checks (`withPrefetched`): `entries` answers from them.
    private var prefetched: [pid_t: [UInt64: PagemapEntry]] = [:]

    /// Reads the `wanted` pages of each process at once (one pread per contiguous run, not one
    /// per page) and answers `entries` from what was read until `body` returns: for checks
    /// made in a batch (the record engine's replay, the migration checks of many splits).
    public func withPrefetched<T>(_ wanted: [pid_t: Set<UInt64>], _ body: () -> T) -> T {
        for (pid, pages) in wanted where !pages.isEmpty {
            let sorted = pages.sorted()
            let read = entries(pid, sorted)
            var known = prefetched[pid] ?? [:]
            for (i, page) in sorted.enumerated() { if let entry = read[i] { known[page] = entry } }
            prefetched[pid] = known
        }
        defer { prefetched = [:] }
        return body()
    }

    /// Runs of wanted pages closer than this are read as one (the entries between are read
    /// and dropped): a fork's shared pages come in short runs a few pages apart (.data, .bss,
    /// the heap, each library's data), and a pread costs as much as some 24 entries more
    /// (measured on Redis's heap: 0.7 us a pread, 0.03 us an entry; the record engine's
    /// batches of scattered faults read through wider gaps for nothing).
    static let gapReadThrough: UInt64 = 24

    /// Pagemap entries for `pages` of `pid` (nil where unreadable), one pread per run of
    /// nearby pages (`wanted` sorted ascending).
    func entries(_ pid: pid_t, _ wanted: [UInt64]) -> [PagemapEntry?] {
        let pages = wanted
        var result = [PagemapEntry?](repeating: nil, count: pages.count)
        if let known = prefetched[pid] {
            var all = true
            for (i, page) in pages.enumerated() {
                guard let entry = known[page] else { all = false; break }
                result[i] = entry
            }
            if all { return result }
        }
        guard !pages.isEmpty else { return result }
        var runStart = 0
        for i in 1...pages.count {
            if i < pages.count && pages[i] > pages[i - 1] && pages[i] - pages[i - 1] <= Self.gapReadThrough * Pagemap.pageSize { continue }
            let first = pages[runStart]
            let count = Int((pages[i - 1] - first) / Pagemap.pageSize) + 1
            if let run = self.pages.entries(pid, from: first, count: count) {
                for k in runStart..<i {
                    let index = Int((pages[k] - first) / Pagemap.pageSize)
                    if index < run.count { result[k] = run[index] }
                }
            }
            runStart = i
        }
        return result
    }

    // MARK: Checking pages

    /// Re-reads `pages` (those still shared) of `pid`; every changed frame is resolved with
    /// `cause`. Pages that left the address space are dropped with `dropReason`.
    /// `stores` says whether the cause can have stored into a page (a syscall's known output
    /// buffers); by default, whether the cause is a store at all.
    /// `siblingsMayHaveWritten` is false where the change is known to be this thread's (its
    /// own page-fault trap).
    public func check(_ pid: pid_t, pages: some Sequence<UInt64>, dropReason: String, origin: Origin? = nil,
                      stores: ((UInt64) -> Bool)? = nil, siblingsMayHaveWritten: Bool = true, cause: (UInt64) -> SplitCause) {
        // Look pages up one by one: holding a copy of the process's dictionary while the
        // ledger changes below would copy all of it, for every split.
        let wanted = pages.filter { ledger.record(pid, $0) != nil }.sorted()
        guard !wanted.isEmpty else { return }
        let found = entries(pid, wanted)
        var dropped: [Drop.Page] = []
        withoutActuallyEscaping(cause) { cause in
            // Only the hidden-frames mode weighs claims of checks under way.
            let outer = framesVisible ? nil : checking[pid]
            if !framesVisible { checking[pid] = stores ?? { cause($0).isWrite } }
            defer { if !framesVisible { checking[pid] = outer } }
        var siblingsSettled = !siblingsMayHaveWritten
        for (i, page) in wanted.enumerated() {
            guard let entry = found[i], var record = ledger.record(pid, page) else { continue }
            let changed = framesVisible ? entry.frame != record.frame && entry.frame != 0 : leftSharedPage(entry, kind: record.kind)
            if entry.present && changed && !siblingsSettled {
                // Another thread of the process may have copied it (its page-fault trap or
                // step not reported yet): let the other threads report first.
                siblingsSettled = true
                _ = arbiter?.settle([pid], except: origin?.tid ?? pid)
                guard let now = ledger.record(pid, page), now.frame == record.frame else { continue }
                record = now
            }
            if !entry.present {
                if entry.swapped { continue }  // swapped out: still the same page, just not in memory
                dropped.append(Drop.Page(page: page, region: record.region, frame: record.frame))
                if let last = ledger.leaveLeavingOne(pid, page: page) { watchReuse(last, page: page, frame: record.frame, kind: record.kind) }
                continue
            }
            if framesVisible {
                if entry.frame == record.frame || entry.frame == 0 { continue }
                resolve(pid, page: page, record: record, newFrame: entry.frame, cause: cause(page), origin: origin)
            } else if leftSharedPage(entry, kind: record.kind) {
                resolveWithoutFrames(pid, page: page, record: record, cause: cause(page), stored: stores?(page), origin: origin)
            }
        }
        }
        if !dropped.isEmpty { stream.emit(.drop(Drop(pid: pid, pages: dropped, reason: dropReason))) }
    }

    /// The shared pages of `pid` inside `ranges` (a syscall's possible stores): the cost
    /// follows what the call can have written, not what is shared.
    public func check(_ pid: pid_t, ranges: [(address: UInt64, length: UInt64)], dropReason: String, origin: Origin? = nil,
                      stores: ((UInt64) -> Bool)? = nil, cause: (UInt64) -> SplitCause) {
        guard let shared = ledger.sharedPagesView(of: pid), !ranges.isEmpty else { return }
        var pages: [UInt64] = []
        for r in ranges where r.length > 0 {
            let first = r.address & ~(Pagemap.pageSize - 1)
            let last = (r.address &+ r.length &- 1) & ~(Pagemap.pageSize - 1)
            guard last >= first else { continue }
            let count = (last - first) / Pagemap.pageSize + 1
            if count <= UInt64(shared.count) {
                var page = first
                for _ in 0..<count {
                    if shared[page] != nil { pages.append(page) }
                    page &+= Pagemap.pageSize
                }
            } else {
                pages += shared.keys.filter { $0 >= first && $0 <= last }
            }
        }
        if pages.isEmpty { return }
        check(pid, pages: Set(pages), dropReason: dropReason, origin: origin, stores: stores, cause: cause)
    }

    /// The shared pages of `pid` in `range` leave its address space (a munmap, a madvise seen
    /// without a syscall stop, by the record engine): dropped, not copies.
    public func dropPages(_ pid: pid_t, in range: Range<UInt64>, reason: String) {
        guard let shared = ledger.sharedPagesView(of: pid) else { return }
        let pages = shared.keys.filter { range.contains($0) }.sorted()
        guard !pages.isEmpty else { return }
        var dropped: [Drop.Page] = []
        for page in pages {
            guard let record = ledger.record(pid, page) else { continue }
            dropped.append(Drop.Page(page: page, region: record.region, frame: record.frame))
            if let last = ledger.leaveLeavingOne(pid, page: page) { watchReuse(last, page: page, frame: record.frame, kind: record.kind) }
        }
        stream.emit(.drop(Drop(pid: pid, pages: dropped, reason: reason)))
    }

    /// Every shared page of `pid`.
    public func sweep(_ pid: pid_t, dropReason: String, origin: Origin? = nil, stores: ((UInt64) -> Bool)? = nil,
                      cause: (UInt64) -> SplitCause) {
        check(pid, pages: Array(ledger.sharedPages(of: pid).keys), dropReason: dropReason, origin: origin, stores: stores, cause: cause)
    }

    /// `pid`'s frame for `page` changed: a split, unless every other holder moved to the same
    /// new frame (migration).
    private func resolve(_ pid: pid_t, page: UInt64, record: PageRecord, newFrame: UInt64, cause: SplitCause, origin: Origin?) {
        let others = ledger.otherHolders(frame: record.frame, page: page, except: pid)
        // The other holders' frames tell a copy from a migration. A break needs the answer
        // now; otherwise it is read once the tracees run again: no other holder can come to
        // map the writer's new frame before its next stop, which comes after.
        if breaker != nil && movedTogether(others, page: page, to: newFrame) {
            ledger.migrate(page: page, from: record.frame, to: newFrame)
            return
        }
        var split = Split(page: page, region: record.region, kind: record.kind, writer: pid, others: others,
                          frameBefore: record.frame, frameAfter: newFrame, cause: cause, engine: engine)
        // With a break the split is written now; otherwise its huge-page flag is read with the
        // others' (confirmSplits), nearby frames in one read.
        if breaker != nil { split.hugePage = pageFlags.isTransparentHuge(record.frame) }
        symbolize(&split, pid: pid, origin: origin)
        if let last = ledger.leaveLeavingOne(pid, page: page) { watchReuse(last, page: page, frame: record.frame, kind: record.kind) }
        if breaker != nil {
            stream.emit(.split(split))
            breaker?.splitReported(split)
        } else {
            unconfirmed.append(Unconfirmed(slot: stream.reserve(), split: split, others: others, record: record, newFrame: newFrame))
        }
    }

    /// A split whose other holders' frames are read once the tracees run again.
    private struct Unconfirmed {
        let slot: Int
        let split: Split
        let others: [pid_t]
        let record: PageRecord
        let newFrame: UInt64
    }
    private var unconfirmed: [Unconfirmed] = []

    /// Tells each split found since the last call from a migration (every holder moved to
    /// the new frame together: they are put back, sharing it) and writes the splits, in
    /// their place in the stream. Called while the tracees run.
    public func confirmSplits() {
        guard !unconfirmed.isEmpty else { return }
        let pending = unconfirmed
        unconfirmed.removeAll(keepingCapacity: true)
        var wanted: [pid_t: Set<UInt64>] = [:]
        if pending.count > 1 {
            for item in pending { for other in item.others { wanted[other, default: []].insert(item.split.page) } }
        }
        let huge = pending.count > 1 ? pageFlags.areTransparentHuge(pending.map(\.record.frame)) : [:]
        withPrefetched(wanted) {
        for item in pending {
            let page = item.split.page, newFrame = item.newFrame, record = item.record
            var split = item.split
            split.hugePage = pending.count > 1 ? huge[record.frame] : pageFlags.isTransparentHuge(record.frame)
            let migrated = movedTogether(item.others, page: page, to: newFrame)
            if migrated {
                for other in item.others where ledger.record(other, page)?.frame == record.frame { ledger.leave(other, page: page) }
                reuseWatch[item.others.first ?? item.split.writer]?[page] = nil
                ledger.share(page: page, frame: newFrame, kind: record.kind, region: record.region, among: item.others + [item.split.writer])
            }
            stream.fill(item.slot, with: migrated ? nil : .split(split))
        }
        }
    }

    /// Whether every other holder maps the new frame too: the page migrated, nobody copied it.
    private func movedTogether(_ others: [pid_t], page: UInt64, to newFrame: UInt64) -> Bool {
        !others.isEmpty && others.allSatisfy { entry($0, page)?.frame == newFrame }
    }

    /// One page's entry (from the prefetched batch when there is one).
    private func entry(_ pid: pid_t, _ page: UInt64) -> PagemapEntry? {
        if let known = prefetched[pid]?[page] { return known }
        return pages.entries(pid, from: page, count: 1)?.first
    }

    public struct SweepCounts {
        let bounded: Int
        let full: [String: Int]
    }

    /// The end of the run: every split confirmed, then the summary.
    public func finish(engine: EngineKind, steps: Int, faults: Int? = nil, sweeps: SweepCounts, lost: CowSummary.LostSamples? = nil) {
        confirmSplits()
        var summary = stream.summary.final(engine: engine, steps: steps, faults: faults, stillShared: ledger.totalShared, lost: lost)
        summary.boundedChecks = sweeps.bounded
        summary.fullSweeps = sweeps.full
        stream.emit(.summary(summary))
        stream.flush()
    }

    /// Without frames, `pid`'s page turned exclusive (or anonymous). It copied the page
    /// unless every other holder did. Certain when the file bit moved, or when another holder
    /// still shares the old page (it is not exclusive). Otherwise the other holders report
    /// their stops first (a copy of theirs takes the page out of `pid`'s ledger), and the
    /// copier stays unknown if another holder wrote the page too (one copied, the other then
    /// wrote in place), or if the page holds an rseq area (the kernel's rseq update stores
    /// there on the way back to user mode, with no fault event visible without root).
    private func resolveWithoutFrames(_ pid: pid_t, page: UInt64, record: PageRecord, cause: SplitCause, stored: Bool?, origin: Origin?) {
        var cause = cause
        let others = ledger.holders(frame: record.frame, page: page).subtracting([pid])
        let certain = record.kind == .file || others.contains { other in
            entries(other, [page])[0].map { $0.present && !$0.exclusive } ?? false
        }
        let writer = pid
        if !certain {
            let list = { (pids: Set<pid_t>) in pids.sorted().map(String.init).joined(separator: ", ") }
            // Other holders whose own check is under way (this one runs inside their
            // settling) are weighed by the cause they would give: a store, or a change seen.
            var contenders = Set(others.filter { checking[$0] != nil })
            if contenders.isEmpty {
                settling[pid] = page
                contenders = arbiter?.settle(others, except: nil) ?? others
                settling[pid] = nil
                guard let now = ledger.record(pid, page), now.frame == record.frame else { return }  // another holder's copy
            }
            let writers = contenders.filter { checking[$0]?(page) ?? true }
            if writers.count == 1, !(stored ?? cause.isWrite), let other = writers.first, settling[other] == page {
                // Nothing of ours stored there; their store explains the change, and their
                // check of this page, under way, names it when we return.
                return
            } else if !writers.isEmpty || (!contenders.isEmpty && !(stored ?? cause.isWrite)) {
                let who = writers.isEmpty ? contenders : writers
                cause = .unknown(note: "frames hidden: \(list(who)) " + (writers.isEmpty ? "saw it change too" : "may have written it at the same moment")
                                 + "; which one copied it is not visible")
            } else if let holders = arbiter?.rseqHolders(of: page, among: others.union([pid])), !holders.isEmpty {
                cause = .unknown(note: "frames hidden: it holds the rseq area of \(list(holders)); the kernel's rseq update in \(list(others.union([pid]))) may have copied it")
            }
        }
        let stillShared = ledger.holders(frame: record.frame, page: page).subtracting([writer])
        var split = Split(page: page, region: record.region, kind: record.kind, writer: writer, others: stillShared.sorted(),
                          frameBefore: 0, frameAfter: 0, cause: cause, engine: engine)
        symbolize(&split, pid: writer, origin: origin)
        if let last = ledger.leaveLeavingOne(writer, page: page) { watchReuse(last, page: page, frame: record.frame, kind: record.kind) }
        stream.emit(.split(split))
        breaker?.splitReported(split)
    }

    /// Backtraces for the causes that have code behind them.
    func symbolize(_ split: inout Split, pid: pid_t, origin: Origin?) {
        guard let symbolizer, let origin else { return }
        switch split.cause {
        case .instruction, .syscall:
            if let frames = origin.frames {
                split.backtrace = frames()
                split.sourceText = split.backtrace.first?.source.flatMap(symbolizer.sourceText)
                return
            }
            guard let regs = origin.regs ?? (try? Ptrace.registers(origin.tid)) else { return }
            split.backtrace = symbolizer.backtrace(pid: pid, tid: origin.tid, regs: regs, mappings: maps(pid))
            split.sourceText = split.backtrace.first?.source.flatMap(symbolizer.sourceText)
        default:
            break
        }
    }

    private func watchReuse(_ pid: pid_t, page: UInt64, frame: UInt64, kind: PageKind) {
        reuseWatch[pid, default: [:]][page] = (frame, kind)
    }

    public func watchesReuse(_ pid: pid_t) -> Bool { reuseWatch[pid]?.isEmpty == false }

    /// The process wrote `pages`: those it alone still maps (after others copied) are reused.
    public func checkReuse(_ pid: pid_t, pages: some Sequence<UInt64>, ip: UInt64?) {
        // Taken out while it is changed: a copy left in place would make the change copy it whole.
        guard var watched = reuseWatch.removeValue(forKey: pid), !watched.isEmpty else { return }
        for page in pages {
            guard let (frame, kind) = watched[page], let entry = entry(pid, page) else { continue }
            watched[page] = nil
            // Without frames: an anonymous page it alone maps is written in place.
            let reused = framesVisible ? entry.frame == frame : kind != .file && !entry.fileOrShared && entry.exclusive
            if entry.present && reused {
                let region = maps(pid).mapping(containing: page)?.region ?? "anon"
                stream.emit(.reuse(Reuse(pid: pid, page: page, region: region, frame: frame, ip: ip)))
            }
        }
        reuseWatch[pid] = watched
    }

    // MARK: Processes going away

    /// exec or exit: every page the process shared is gone from it.
    public func processGone(_ pid: pid_t, reason: String) {
        let removed = ledger.removeProcess(pid)
        if !removed.isEmpty {
            stream.emit(.drop(Drop(pid: pid, pages: removed.map { Drop.Page(page: $0.page, region: $0.record.region, frame: $0.record.frame) }, reason: reason)))
        }
        for item in removed {
            if let last = item.lastHolder { watchReuse(last, page: item.page, frame: item.record.frame, kind: item.record.kind) }
        }
        self.pages.forget(pid)
        reuseWatch[pid] = nil
        symbolizer?.processGone(pid)
    }

    /// What is kept per process, for the debug report: it must follow the live processes.
    public var liveState: (pagemaps: Int, reuseWatch: Int) { (pages.openCount, reuseWatch.count) }
}

/// What the tracker asks of the wait loop before it blames a copy it cannot see the cause of.
public protocol StopArbiter: AnyObject {
    /// Lets the threads of `processes` (but `thread`) report the stops they have made; returns
    /// the processes that could not (stopped in a stop still being handled).
    func settle(_ processes: Set<pid_t>, except thread: pid_t?) -> Set<pid_t>
    /// Which of these processes have a thread whose rseq area is on this page.
    func rseqHolders(of page: UInt64, among processes: Set<pid_t>) -> Set<pid_t>
}

extension Set {
    var onlyElement: Element? { count == 1 ? first : nil }
}
