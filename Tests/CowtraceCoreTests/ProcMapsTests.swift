import Glibc
import CowtraceCore
import Testing

@Suite struct ProcMapsTests {
    static let sample = """
        00400000-00401000 r--p 00000000 fe:01 1234                               /tmp/a b/prog
        00404000-00405000 rw-p 00003000 fe:01 1234                               /tmp/a b/prog
        01e5d000-01e7e000 rw-p 00000000 00:00 0                                  [heap]
        7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
        7ffd1c7a0000-7ffd1c7c1000 rw-p 00000000 00:00 0                          [stack]
        7f0000100000-7f0000101000 rw-s 00000000 00:01 77                         /dev/zero (deleted)
        """

    @Test func parsesEveryField() throws {
        let maps = try ProcMaps.parse(Self.sample)
        #expect(maps.count == 6)
        #expect(maps[0].start == 0x400000 && maps[0].end == 0x401000)
        #expect(maps[0].path == "/tmp/a b/prog")
        #expect(maps[0].readable && !maps[0].writable && maps[0].isPrivate)
        #expect(maps[1].offset == 0x3000 && maps[1].inode == 1234 && maps[1].isCopyOnWrite)
        #expect(maps[2].region == "[heap]")
        #expect(maps[3].path == "" && maps[3].region == "anon")
        #expect(maps[5].path == "/dev/zero (deleted)" && !maps[5].isPrivate && !maps[5].isCopyOnWrite)
        #expect(maps.mapping(containing: 0x7ffd1c7a0010)?.region == "[stack]")
        #expect(maps.mapping(containing: 0x402000) == nil)
    }

    @Test func rejectsMalformedLines() {
        #expect(throws: CowtraceError.self) { try ProcMaps.parse("00400000 r--p 00000000 fe:01 1234 /x") }
        #expect(throws: CowtraceError.self) { try ProcMaps.parse("zz-00401000 r--p 00000000 fe:01 1234 /x") }
        #expect(throws: CowtraceError.self) { try ProcMaps.parse("00400000-00401000 r-p 00000000 fe:01 1234 /x") }
    }

    @Test func pagemapBits() {
        let entry = PagemapEntry(raw: (1 << 63) | (1 << 61) | (1 << 56) | 0x12345)
        #expect(entry.present && entry.fileOrShared && entry.exclusive && !entry.swapped && !entry.softDirty)
        #expect(entry.frame == 0x12345)
        #expect(!PagemapEntry(raw: 1 << 62).present)
    }
}

@Suite struct WatchFilterTests {
    @Test func parsesEachForm() throws {
        let filter = try WatchFilter(parsing: ["0x404040", "0x1000-0x3000", "[stack]", "/usr/lib/libc.so.6", "4096"])
        #expect(filter.items == [.address(0x404040), .range(0x1000, 0x3000), .region("[stack]"), .region("/usr/lib/libc.so.6"), .address(4096)])
    }

    @Test func rejectsMalformed() {
        for bad in ["", "zzz", "0x3000-0x1000", "[stack", "[]", "0x1-0x2-0x3", "-5"] {
            #expect(throws: CowtraceError.self, "\(bad)") { try WatchFilter(parsing: [bad]) }
        }
    }
}

@Suite struct PageLedgerTests {
    @Test func splitLeavesTheOthersAndPrivatizesTheLast() {
        let ledger = PageLedger()
        ledger.share(page: 0x1000, frame: 7, kind: .anon, region: "anon", among: [1, 2])
        #expect(ledger.sharedCount(of: 1) == 1 && ledger.sharedCount(of: 2) == 1)
        // A grandchild joins the same frame.
        ledger.share(page: 0x1000, frame: 7, kind: .anon, region: "anon", among: [2, 3])
        #expect(ledger.holders(frame: 7, page: 0x1000) == [1, 2, 3])
        #expect(ledger.leave(3, page: 0x1000) == [1, 2])
        #expect(ledger.sharedCount(of: 1) == 1)
        // The second-to-last copy leaves one holder: no longer shared.
        #expect(ledger.leave(1, page: 0x1000) == [2])
        #expect(ledger.sharedCount(of: 2) == 0 && ledger.totalShared == 0)
    }

    /// The fault engine's filter lets a fault stop its thread while the page has a record:
    /// every record added and removed is reported, so the count it keeps per page follows
    /// the ledger through shares, grandchildren, splits, migration and exits.
    @Test func recordChangesAreReported() {
        let ledger = PageLedger()
        var counts: [UInt64: Int] = [:]
        ledger.onRecord = { page, added in counts[page, default: 0] += added ? 1 : -1 }
        func expectCounts(_ comment: Comment) {
            for page: UInt64 in [0x1000, 0x2000, 0x3000] {
                let live = [1, 2, 3, 4].filter { ledger.record($0, page) != nil }.count
                #expect(counts[page, default: 0] == live, comment)
            }
        }
        ledger.share(page: 0x1000, frame: 7, kind: .anon, region: "a", among: [1, 2])
        ledger.share(page: 0x2000, frame: 8, kind: .anon, region: "a", among: [1, 2])
        ledger.share(page: 0x1000, frame: 7, kind: .anon, region: "a", among: [2, 3])
        ledger.share(page: 0x3000, frame: 9, kind: .zero, region: "a", among: [3, 4])
        expectCounts("shared")
        ledger.leave(3, page: 0x1000)
        ledger.migrate(page: 0x2000, from: 8, to: 10)
        expectCounts("split and migrated")
        ledger.leave(1, page: 0x1000)  // the last holder's record goes too
        _ = ledger.removeProcess(4)
        expectCounts("privatized and exited")
        _ = ledger.removeProcess(1)
        _ = ledger.removeProcess(2)
        _ = ledger.removeProcess(3)
        #expect(counts.values.allSatisfy { $0 == 0 } && ledger.totalShared == 0)
    }

    /// Forks share thousands of pages between the same sets and exits take a process out of
    /// them all: the ledger works each move between two sets out once per batch. Against a
    /// plain model (holders per (frame, page), records per process), over random forks,
    /// copies, migrations and exits that free set numbers and make them again for other sets.
    @Test func bulkMovesBetweenSetsAgreeWithAPlainModel() {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<40 {
            let ledger = PageLedger()
            var model: [UInt64: (frame: UInt64, pids: Set<pid_t>)] = [:]  // page -> one shared frame
            var records = 0
            ledger.onRecord = { _, added in records += added ? 1 : -1 }
            var nextFrame: UInt64 = 100
            let pages = (0..<UInt64(24)).map { 0x1000 * ($0 + 1) }
            for _ in 0..<200 {
                let pid = pid_t.random(in: 1...6, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:  // pid forks `child`: every page it shares, and a few of its own, join the child
                    let child = pid_t.random(in: 1...6, using: &rng)
                    guard child != pid, !model.values.contains(where: { $0.pids.contains(child) }) else { continue }
                    // One page at a time or all at once, as a fork shares them.
                    var batch: [(page: UInt64, frame: UInt64, kind: PageKind, region: String)] = []
                    let bulk = Bool.random(using: &rng)
                    for page in pages {
                        if let m = model[page], m.pids.contains(pid) {
                            batch.append((page, m.frame, .anon, "r"))
                            model[page]!.pids.insert(child)
                        } else if model[page] == nil, Bool.random(using: &rng) {
                            nextFrame += 1
                            batch.append((page, nextFrame, .anon, "r"))
                            model[page] = (nextFrame, [pid, child])
                        }
                    }
                    if bulk {
                        ledger.shareAll(batch, among: [pid, child])
                    } else {
                        for p in batch { ledger.share(page: p.page, frame: p.frame, kind: p.kind, region: p.region, among: [pid, child]) }
                    }
                case 1:  // pid copies one page
                    guard let page = pages.filter({ model[$0]?.pids.contains(pid) == true }).randomElement(using: &rng) else { continue }
                    ledger.leave(pid, page: page)
                    model[page]!.pids.remove(pid)
                    if model[page]!.pids.count < 2 { model[page] = nil }
                case 2:  // a page moves frame under everyone
                    guard let page = model.keys.randomElement(using: &rng) else { continue }
                    nextFrame += 1
                    ledger.migrate(page: page, from: model[page]!.frame, to: nextFrame)
                    model[page]!.frame = nextFrame
                default:  // pid exits
                    let removed = ledger.removeProcess(pid)
                    #expect(removed.map(\.page) == pages.filter { model[$0]?.pids.contains(pid) == true }, "round \(round)")
                    for item in removed {
                        let left = model[item.page]!.pids.subtracting([pid])
                        #expect(item.lastHolder == (left.count == 1 ? left.first : nil), "round \(round)")
                        model[item.page] = left.count >= 2 ? (model[item.page]!.frame, left) : nil
                    }
                }
                for page in pages {
                    let expected = model[page]
                    #expect(ledger.holders(frame: expected?.frame ?? 0, page: page) == (expected?.pids ?? []), "round \(round)")
                    for p in pid_t(1)...6 {
                        #expect((ledger.record(p, page)?.frame) == (expected?.pids.contains(p) == true ? expected!.frame : nil), "round \(round)")
                    }
                }
                #expect(records == model.values.reduce(0) { $0 + $1.pids.count })
            }
        }
    }

    @Test func migrationMovesEveryone() {
        let ledger = PageLedger()
        ledger.share(page: 0x2000, frame: 9, kind: .file, region: "/x", among: [1, 2])
        ledger.migrate(page: 0x2000, from: 9, to: 10)
        #expect(ledger.record(1, 0x2000)?.frame == 10 && ledger.record(2, 0x2000)?.frame == 10)
        #expect(ledger.holders(frame: 10, page: 0x2000) == [1, 2])
    }

    @Test func removingAProcessReportsItsPages() {
        let ledger = PageLedger()
        ledger.share(page: 0x1000, frame: 1, kind: .anon, region: "a", among: [5, 6])
        ledger.share(page: 0x2000, frame: 2, kind: .zero, region: "a", among: [5, 6])
        let removed = ledger.removeProcess(6)
        #expect(removed.map(\.page) == [0x1000, 0x2000])
        #expect(removed.map(\.lastHolder) == [5, 5])
        #expect(ledger.totalShared == 0)
        #expect(ledger.holderSets == 0)
    }

    /// The ledger is keyed by what is shared: every page a fork shares has the same holders,
    /// stored once, whatever the number of pages; a grandchild joining some makes a second set.
    @Test func holderSetsAreStoredOnce() {
        let ledger = PageLedger()
        for i in 0..<1000 { ledger.share(page: UInt64(i) * 4096, frame: UInt64(i + 1), kind: .anon, region: "a", among: [1, 2]) }
        #expect(ledger.holderSets == 1)
        for i in 0..<10 { ledger.share(page: UInt64(i) * 4096, frame: UInt64(i + 1), kind: .anon, region: "a", among: [2, 3]) }
        #expect(ledger.holderSets == 2)
        #expect(ledger.holders(frame: 1, page: 0) == [1, 2, 3])
        #expect(ledger.leave(3, page: 0) == [1, 2])
        #expect(ledger.leave(1, page: 4096) == [2, 3])
        #expect(ledger.holderSets == 3)
        _ = ledger.removeProcess(3)
        _ = ledger.removeProcess(2)
        #expect(ledger.holderSets == 0)
        #expect(ledger.totalShared == 0)
    }
}
