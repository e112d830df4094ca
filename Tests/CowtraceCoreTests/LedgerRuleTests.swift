@testable import CowtraceCore
import Glibc
import Testing

/// A page table the test writes: each process's mappings and pagemap entries.
final class FakePageTable: PageTable {
    var mappings: [pid_t: [Mapping]] = [:]
    var table: [pid_t: [UInt64: PagemapEntry]] = [:]

    static func entry(frame: UInt64, exclusive: Bool = false, file: Bool = false, present: Bool = true) -> PagemapEntry {
        PagemapEntry(raw: frame | (exclusive ? 1 << 56 : 0) | (file ? 1 << 61 : 0) | (present ? 1 << 63 : 0))
    }

    func set(_ pid: pid_t, _ page: UInt64, frame: UInt64, exclusive: Bool = false, file: Bool = false, present: Bool = true) {
        table[pid, default: [:]][page] = Self.entry(frame: frame, exclusive: exclusive, file: file, present: present)
    }

    func maps(_ pid: pid_t) -> [Mapping] { mappings[pid] ?? [] }

    func entries(_ pid: pid_t, from page: UInt64, count: Int) -> [PagemapEntry]? {
        guard let known = table[pid] else { return nil }
        return (0..<count).map { known[page + UInt64($0) * 4096] ?? PagemapEntry(raw: 0) }
    }

    func forEachPresent(_ pid: pid_t, from start: UInt64, to end: UInt64, _ body: (UInt64, PagemapEntry) -> Void) {
        for (page, entry) in (table[pid] ?? [:]).sorted(by: { $0.key < $1.key }) where page >= start && page < end && entry.present {
            body(page, entry)
        }
    }

    func forget(_ pid: pid_t) {}
    var openCount: Int { 0 }
}

/// Collects what the stream delivers to its renderers.
final class CollectedEvents: EventRenderer {
    var events: [TraceEvent] = []
    func render(_ event: TraceEvent, tracees: Int) { events.append(event) }
    var splits: [Split] { events.compactMap { if case .split(let s) = $0 { s } else { nil } } }
    var reuses: [Reuse] { events.compactMap { if case .reuse(let r) = $0 { r } else { nil } } }
}

/// The ledger's rules, table-driven over a fake page table: which pages a clone shares and
/// which it copied itself, a copy against a migration, reuse by the last holder, and the
/// hidden-frames arbitration. The attribution rule itself is in AttributionRuleTests.
@Suite struct LedgerRuleTests {
    static let parent: pid_t = 100, child: pid_t = 101
    static let heap: UInt64 = 0x50_0000, tidPage: UInt64 = 0x7f00_0000, stack: UInt64 = 0x7ffe_0000

    struct World {
        let pages = FakePageTable()
        let stream = EventStream()
        let out = CollectedEvents()
        let tracker: CowTracker

        init(framesVisible: Bool = true) {
            stream.add(out)
            tracker = CowTracker(stream: stream, watch: WatchFilter(), engine: .fault, symbolizer: nil,
                                 framesVisible: framesVisible, pages: pages, zeroFrame: 0x1)
            pages.mappings[LedgerRuleTests.parent] = [
                Mapping(start: LedgerRuleTests.heap, end: LedgerRuleTests.heap + 0x3000, readable: true, writable: true, executable: false,
                        isPrivate: true, offset: 0, inode: 0, path: "[heap]"),
                Mapping(start: LedgerRuleTests.tidPage, end: LedgerRuleTests.tidPage + 0x1000, readable: true, writable: true,
                        executable: false, isPrivate: true, offset: 0, inode: 0, path: ""),
                Mapping(start: LedgerRuleTests.stack, end: LedgerRuleTests.stack + 0x1000, readable: true, writable: false,
                        executable: false, isPrivate: true, offset: 0, inode: 0, path: "[stack]"),  // read-only: never shared
            ]
            pages.mappings[LedgerRuleTests.child] = pages.mappings[LedgerRuleTests.parent]
        }

        /// A fork whose child maps `childFrames` (page -> frame) where the parent had `parentFrames`
        /// before, and the parent `parentAfter` after.
        func fork(parentFrames: [UInt64: UInt64], childFrames: [UInt64: UInt64], parentAfter: [UInt64: UInt64]? = nil,
                  flags: CloneFlags = [.childSettid, .childCleartid], exclusive: Set<UInt64> = []) -> Int? {
            for (page, frame) in parentFrames { pages.set(LedgerRuleTests.parent, page, frame: frame) }
            let snapshot = tracker.snapshot(parent: LedgerRuleTests.parent)
            for (page, frame) in parentAfter ?? parentFrames {
                pages.set(LedgerRuleTests.parent, page, frame: frame, exclusive: exclusive.contains(page))
            }
            for (page, frame) in childFrames { pages.set(LedgerRuleTests.child, page, frame: frame, exclusive: exclusive.contains(page)) }
            let request = CloneRequest(call: .clone, flags: flags, exitSignal: SIGCHLD,
                                       childTidPointer: LedgerRuleTests.tidPage + 0xa10,
                                       parentTidPointer: flags.contains(.parentSettid) ? LedgerRuleTests.tidPage + 0xa10 : nil,
                                       stack: 0, tls: nil)
            tracker.cloneCompleted(snapshot, child: LedgerRuleTests.child, request: request)
            return tracker.sharedPageCount(child: LedgerRuleTests.child)
        }
    }

    static let heapFrames: [UInt64: UInt64] = [heap: 0x10, heap + 0x1000: 0x11, heap + 0x2000: 0x12, tidPage: 0x13]

    @Test func cloneSharesSameFramesAndNamesTheTidStore() {
        let w = World()
        var childFrames = Self.heapFrames
        childFrames[Self.tidPage] = 0x99  // CLONE_CHILD_SETTID copied it in the child
        let shared = w.fork(parentFrames: Self.heapFrames, childFrames: childFrames)
        #expect(shared == 3)
        #expect(w.tracker.ledger.sharedCount(of: Self.child) == 3 && w.tracker.ledger.sharedCount(of: Self.parent) == 3)
        let split = w.out.splits.first
        #expect(w.out.splits.count == 1 && split?.page == Self.tidPage && split?.writer == Self.child)
        #expect(split?.cause == .clone(.childSetTID, pointer: Self.tidPage + 0xa10))
        #expect(split?.frameBefore == 0x13 && split?.frameAfter == 0x99)
    }

    @Test func parentSetTidCopyIsTheParents() {
        let w = World()
        var after = Self.heapFrames
        after[Self.tidPage] = 0x98
        _ = w.fork(parentFrames: Self.heapFrames, childFrames: Self.heapFrames, parentAfter: after, flags: [.parentSettid])
        let split = w.out.splits.first
        #expect(w.out.splits.count == 1 && split?.writer == Self.parent && split?.others == [Self.child])
        #expect(split?.cause == .clone(.parentSetTID, pointer: Self.tidPage + 0xa10))
    }

    @Test func otherPageCopiedInsideCloneIsUnknown() {
        let w = World()
        var childFrames = Self.heapFrames
        childFrames[Self.heap] = 0x77
        _ = w.fork(parentFrames: Self.heapFrames, childFrames: childFrames)
        guard case .unknown(let note)? = w.out.splits.first?.cause else { Issue.record("\(w.out.splits)"); return }
        #expect(note.contains("inside clone"))
    }

    /// (what the child's and the parent's frames for the page become, what is reported)
    static let changes: [(child: UInt64, parent: UInt64, split: Bool, stillShared: Int)] = [
        (0x21, 0x10, true, 3),   // the child copied it
        (0x21, 0x21, false, 4),  // both moved together: a migration, still shared on the new frame
        (0x10, 0x10, false, 4),  // nothing changed
    ]

    @Test(arguments: changes.indices)
    func copyOrMigration(_ i: Int) {
        let c = Self.changes[i]
        let w = World()
        _ = w.fork(parentFrames: Self.heapFrames, childFrames: Self.heapFrames)
        w.pages.set(Self.child, Self.heap, frame: c.child)
        w.pages.set(Self.parent, Self.heap, frame: c.parent)
        w.tracker.check(Self.child, pages: [Self.heap], dropReason: "exit") { _ in .kernel(nil) }
        // Decided once the tracees run again; nothing reaches the renderers before.
        #expect(w.out.splits.isEmpty)
        w.tracker.confirmSplits()
        #expect(w.out.splits.count == (c.split ? 1 : 0))
        #expect(w.tracker.ledger.sharedCount(of: Self.child) == c.stillShared)
        if c.split {
            #expect(w.out.splits[0].writer == Self.child && w.out.splits[0].others == [Self.parent])
            #expect(w.out.splits[0].frameBefore == 0x10 && w.out.splits[0].frameAfter == c.child)
        }
    }

    @Test func lastHolderWritingItsFrameIsAReuse() {
        let w = World()
        _ = w.fork(parentFrames: Self.heapFrames, childFrames: Self.heapFrames)
        w.pages.set(Self.child, Self.heap, frame: 0x21)
        w.tracker.check(Self.child, pages: [Self.heap], dropReason: "exit") { _ in .kernel(nil) }
        w.tracker.confirmSplits()
        #expect(w.tracker.watchesReuse(Self.parent))
        // The parent, left alone on frame 0x10, writes it: the kernel reuses the frame.
        w.tracker.checkReuse(Self.parent, pages: [Self.heap], ip: 0x401000)
        #expect(w.out.reuses.count == 1 && w.out.reuses.first?.frame == 0x10 && w.out.reuses.first?.ip == 0x401000)
        #expect(!w.tracker.watchesReuse(Self.parent))
    }

    @Test func pageLeavingTheAddressSpaceIsADrop() {
        let w = World()
        _ = w.fork(parentFrames: Self.heapFrames, childFrames: Self.heapFrames)
        w.pages.set(Self.child, Self.heap + 0x1000, frame: 0, present: false)
        w.tracker.check(Self.child, pages: [Self.heap + 0x1000], dropReason: "munmap") { _ in .kernel(nil) }
        let drops = w.out.events.compactMap { if case .drop(let d) = $0 { d } else { nil } }
        #expect(drops.count == 1 && drops.first?.reason == "munmap" && drops.first?.pages.first?.page == Self.heap + 0x1000)
        #expect(w.out.splits.isEmpty)
    }

    /// Without frame numbers: a copy is seen through the exclusive bit. Certain when the other
    /// holder still shares the old page (not exclusive); when both turned exclusive, the
    /// other holders' pending stops are asked for first, and a cause that is only a change
    /// seen, facing another holder that may have written, becomes unknown.
    final class Arbiter: StopArbiter {
        var asked: [Set<pid_t>] = []
        let busy: Set<pid_t>
        init(busy: Set<pid_t>) { self.busy = busy }
        func settle(_ processes: Set<pid_t>, except thread: pid_t?) -> Set<pid_t> {
            asked.append(processes)
            return busy.intersection(processes)
        }
        func rseqHolders(of page: UInt64, among processes: Set<pid_t>) -> Set<pid_t> { [] }
    }

    static let hidden: [(parentExclusive: Bool, busy: Set<pid_t>, cause: SplitCause, expected: String)] = [
        (false, [], .kernel(nil), "kernel"),                     // the parent still shares: the child copied, as seen
        (true, [], .syscall(SyscallCall(name: "read", line: "read(...)")), "syscall"),  // both exclusive, nobody else busy: the child's store
        (true, [100], .kernel(nil), "unknown"),                  // both exclusive, the parent's stop still pending, no store of ours
    ]

    @Test(arguments: hidden.indices)
    func hiddenFramesArbitration(_ i: Int) {
        let h = Self.hidden[i]
        let w = World(framesVisible: false)
        let arbiter = Arbiter(busy: h.busy)
        w.tracker.arbiter = arbiter
        _ = w.fork(parentFrames: Self.heapFrames, childFrames: Self.heapFrames)
        #expect(w.tracker.ledger.sharedCount(of: Self.child) == 4)
        w.pages.set(Self.child, Self.heap, frame: 0, exclusive: true)
        w.pages.set(Self.parent, Self.heap, frame: 0, exclusive: h.parentExclusive)
        w.tracker.check(Self.child, pages: [Self.heap], dropReason: "exit", siblingsMayHaveWritten: false) { _ in h.cause }
        w.tracker.confirmSplits()
        #expect(w.out.splits.count == 1)
        #expect(w.out.splits.first?.cause.name == h.expected, "\(w.out.splits)")
        #expect(w.out.splits.first?.writer == Self.child)
        #expect(arbiter.asked.isEmpty == !h.parentExclusive)
    }
}
