import Glibc

/// What kind of page a fork left shared.
public enum PageKind: String, Sendable {
    /// An anonymous page (heap, stack, .bss, a copied .data page).
    case anon
    /// A private file page not yet copied (pagemap bit 61).
    case file
    /// The kernel's zero page (read-faulted, never written).
    case zero
}

/// A tracked page in one process.
public struct PageRecord: Sendable, Equatable {
    public var frame: UInt64
    public let kind: PageKind
    public let region: String
}

/// The page ledger: for every traced process and tracked page its frame, and for every
/// (frame, page) the processes mapping it. Only pages shared by two or more processes are
/// kept; a page left with one holder is that process's own again. Works for any number of
/// processes: a grandchild joins the holders of frames its parent shares with its grandparent.
///
/// Keyed by what is shared: the sets of processes holding a frame are few (after a fork, all
/// of a child's pages have the same two holders), so each set is stored once and a page
/// records only its set's number.
public final class PageLedger {
    struct Key: Hashable {
        let frame: UInt64
        let page: UInt64
    }

    /// A set of holders, sorted, and how many (frame, page) keys use it.
    private struct Group {
        var pids: [pid_t]
        var uses: Int
    }

    private var pagesByProcess: [pid_t: [UInt64: PageRecord]] = [:]
    private var holders: [Key: Int32] = [:]
    private var groups: [Group] = []
    private var groupNumbers: [[pid_t]: Int32] = [:]
    private var freeGroups: [Int32] = []

    public init() {}

    /// The pages `pid` shares with another traced process.
    public func sharedPages(of pid: pid_t) -> [UInt64: PageRecord] { pagesByProcess[pid] ?? [:] }
    /// The same, without building anything (nil when nothing is shared).
    public func sharedPagesView(of pid: pid_t) -> [UInt64: PageRecord]? { pagesByProcess[pid] }
    public func sharedCount(of pid: pid_t) -> Int { pagesByProcess[pid]?.count ?? 0 }
    public func record(_ pid: pid_t, _ page: UInt64) -> PageRecord? { pagesByProcess[pid]?[page] }
    public var processes: [pid_t] { Array(pagesByProcess.keys) }
    /// Nothing is shared.
    public var isEmpty: Bool { pagesByProcess.isEmpty }
    /// Told of every (process, page) record as it is added (true) or removed (false): the
    /// fault engine's filter lets the faults on recorded pages stop their thread.
    public var onRecord: ((UInt64, Bool) -> Void)?
    public var totalShared: Int { pagesByProcess.values.reduce(0) { $0 + $1.count } }
    /// Distinct holder sets in use (a debug figure: few, whatever the pages).
    public var holderSets: Int { groupNumbers.count }

    /// The processes mapping `frame` at `page`.
    public func holders(frame: UInt64, page: UInt64) -> Set<pid_t> {
        guard let g = holders[Key(frame: frame, page: page)] else { return [] }
        return Set(groups[Int(g)].pids)
    }

    /// The processes mapping `frame` at `page` but `pid`, in order (no set built: per split).
    public func otherHolders(frame: UInt64, page: UInt64, except pid: pid_t) -> [pid_t] {
        guard let g = holders[Key(frame: frame, page: page)] else { return [] }
        return groups[Int(g)].pids.filter { $0 != pid }
    }

    /// The number of the set `pids` (sorted, distinct), counting one more use.
    private func retain(_ pids: [pid_t]) -> Int32 {
        if let g = groupNumbers[pids] {
            groups[Int(g)].uses += 1
            return g
        }
        let g: Int32
        if let free = freeGroups.popLast() {
            g = free
            groups[Int(g)] = Group(pids: pids, uses: 1)
        } else {
            g = Int32(groups.count)
            groups.append(Group(pids: pids, uses: 1))
        }
        groupNumbers[pids] = g
        return g
    }

    private func release(_ g: Int32) {
        groups[Int(g)].uses -= 1
        guard groups[Int(g)].uses == 0 else { return }
        groupNumbers[groups[Int(g)].pids] = nil
        groups[Int(g)].pids = []
        freeGroups.append(g)
        freedCount += 1
        // A freed number may come back as another set: what was learnt of it is void.
        joined = [:]
        leftBy = [:]
    }

    /// Bulk work moves many pages between the same two sets (a fork: every page the parent
    /// shared with {A, B} is now shared with {A, B, child}): each move is worked out once.
    /// (old set or -1, the pids joining) -> new set; (old set, the pid leaving) -> new set or -1.
    private var joined: [Int32: (among: [pid_t], to: Int32)] = [:]
    private var leftBy: [Int64: Int32] = [:]

    /// `key` moves from its set (if any) to that set with `pids` added; returns the new set
    /// (nil: fewer than two holders).
    /// `last`: the move made last in a bulk join (the same `pids`), reused without a lookup
    /// while no set number has been freed since (a fresh one matches nothing).
    private func join(_ key: Key, _ pids: [pid_t], last: inout LastMove) -> Int32? {
        // One lookup for both the read and the write (a fork joins thousands of pages).
        var g: Int32?
        Self.update(&holders[key, default: -1]) { slot in
            let old = slot
            if last.from == old, last.freed == freedCount {
                groups[Int(last.to)].uses += 1
                g = last.to
            } else {
                g = retainJoined(old, pids)
                if let g { last = LastMove(from: old, to: g, freed: freedCount) }
            }
            guard let g else { return }
            if g == old {
                groups[Int(g)].uses -= 1  // no change: the use just counted is not a new one
            } else {
                slot = g
                if old >= 0 { release(old) }
            }
        }
        if g == nil { holders[key] = nil }  // it had no set (one with holders always has a set after)
        return g
    }

    private static func update<T>(_ value: inout T, _ body: (inout T) -> Void) { body(&value) }

    struct LastMove {
        var from: Int32 = -2
        var to: Int32 = -1
        var freed = 0
    }
    /// Set numbers freed so far: a move worked out before may name a number reused since.
    private var freedCount = 0

    /// Stands for "no record" while a table's slot is looked up once to be filled if empty.
    private static let absent = PageRecord(frame: .max, kind: .anon, region: "")

    /// The set `old` (or none: -1) with `pids` added, counted as one more use.
    private func retainJoined(_ old: Int32, _ pids: [pid_t]) -> Int32? {
        if let hit = joined[old], hit.among == pids {
            groups[Int(hit.to)].uses += 1
            return hit.to
        }
        var set = old >= 0 ? groups[Int(old)].pids : []
        for pid in pids where !set.contains(pid) { set.append(pid) }
        guard set.count >= 2 else { return nil }
        set.sort()
        let g = retain(set)
        joined[old] = (pids, g)
        return g
    }

    /// Records that `pids` all map `frame` at `page`.
    public func share(page: UInt64, frame: UInt64, kind: PageKind, region: String, among pids: [pid_t]) {
        var none = LastMove()
        guard let g = join(Key(frame: frame, page: page), pids, last: &none) else { return }
        for pid in groups[Int(g)].pids where pagesByProcess[pid]?[page] == nil {
            pagesByProcess[pid, default: [:]][page] = PageRecord(frame: frame, kind: kind, region: region)
            onRecord?(page, true)
        }
    }

    /// `share` for many pages among the same processes (a fork: every page the parent has
    /// present joins the child), with the tables sized once and each process's own table
    /// held while it is filled. Processes that share nothing yet (the fork of a process that
    /// shares nothing: a server's BGSAVE) end up with the same records: one table is filled
    /// and given to each of them, copied at its first change (after the fork, not inside it).
    public func shareAll(_ pages: [(page: UInt64, frame: UInt64, kind: PageKind, region: String)], among pids: [pid_t]) {
        guard !pages.isEmpty else { return }
        holders.reserveCapacity(holders.count + pages.count)
        let fresh = pids.count > 1 && Set(pids).count == pids.count && pids.allSatisfy { pagesByProcess[$0] == nil }
        var tables = pids.enumerated().map { i, pid in
            var table = pagesByProcess.removeValue(forKey: pid) ?? [:]
            if !fresh || i == 0 { table.reserveCapacity(table.count + pages.count) }
            return table
        }
        let onRecord = self.onRecord
        // The set a page joins, and where each of its holders' table is (nil: a holder from
        // before, a grandparent, whose table stays in place), for the set met last.
        var lastSet: Int32 = -1
        var lastTables: [Int?] = []
        var lastMove = LastMove()
        tables.withUnsafeMutableBufferPointer { tables in
            pages.withUnsafeBufferPointer { pages in
                for i in pages.indices {
                    let page = pages[i].page, frame = pages[i].frame
                    guard let g = join(Key(frame: frame, page: page), pids, last: &lastMove) else { continue }
                    if g != lastSet {
                        lastSet = g
                        lastTables = groups[Int(g)].pids.map { pids.firstIndex(of: $0) }
                    }
                    for (k, t) in lastTables.enumerated() {
                        if let t {
                            if fresh && t != 0 { continue }  // the first table's records, at the end
                            var added = false
                            Self.update(&tables[t][page, default: Self.absent]) { slot in
                                guard slot.frame == Self.absent.frame else { return }
                                slot = PageRecord(frame: frame, kind: pages[i].kind, region: pages[i].region)
                                added = true
                            }
                            guard added else { continue }
                            if fresh { for _ in 1..<pids.count { onRecord?(page, true) } }
                        } else {
                            let pid = groups[Int(g)].pids[k]
                            guard pagesByProcess[pid]?[page] == nil else { continue }
                            pagesByProcess[pid, default: [:]][page] = PageRecord(frame: frame, kind: pages[i].kind, region: pages[i].region)
                        }
                        onRecord?(page, true)
                    }
                }
            }
        }
        if fresh {
            if !tables[0].isEmpty { for pid in pids { pagesByProcess[pid] = tables[0] } }
        } else {
            for (i, table) in tables.enumerated() where !table.isEmpty { pagesByProcess[pids[i]] = table }
        }
    }

    /// `pid` no longer maps its old frame at `page` (it wrote it, or the page is gone).
    /// Returns the processes left on the old frame; with one left, the page is private to it.
    @discardableResult
    public func leave(_ pid: pid_t, page: UInt64) -> Set<pid_t> { Set(leaving(pid, page: page)) }

    /// `leave`, answering only the one process left on the old frame, if one is (its page
    /// is its own again).
    public func leaveLeavingOne(_ pid: pid_t, page: UInt64) -> pid_t? {
        let left = leaving(pid, page: page)
        return left.count == 1 ? left[0] : nil
    }

    private func leaving(_ pid: pid_t, page: UInt64) -> [pid_t] {
        guard let record = pagesByProcess[pid]?.removeValue(forKey: page) else { return [] }
        onRecord?(page, false)
        if pagesByProcess[pid]?.isEmpty == true { pagesByProcess[pid] = nil }
        let left = leaveGroup(Key(frame: record.frame, page: page), pid)
        if left.count <= 1 {
            for last in left {
                if pagesByProcess[last]?.removeValue(forKey: page) != nil { onRecord?(page, false) }
                if pagesByProcess[last]?.isEmpty == true { pagesByProcess[last] = nil }
            }
        }
        return left
    }

    /// Every process on (frame, page) moved to `newFrame` together: migration, not a copy.
    public func migrate(page: UInt64, from frame: UInt64, to newFrame: UInt64) {
        guard let g = holders.removeValue(forKey: Key(frame: frame, page: page)) else { return }
        let newKey = Key(frame: newFrame, page: page)
        if let other = holders[newKey] { release(other) }
        holders[newKey] = g
        for pid in groups[Int(g)].pids { pagesByProcess[pid]?[page]?.frame = newFrame }
    }

    /// Forgets a process (exit, exec); returns its pages, so drops can be reported, each with
    /// the one process left holding it, if only one is.
    public func removeProcess(_ pid: pid_t) -> [(page: UInt64, record: PageRecord, lastHolder: pid_t?)] {
        guard let pages = pagesByProcess.removeValue(forKey: pid) else { return [] }
        // The process left alone on most pages (the parent of an exiting child) has its table
        // held out while its records go.
        var heldPid: pid_t = 0
        var held: [UInt64: PageRecord] = [:]
        defer { if !held.isEmpty { pagesByProcess[heldPid] = held } }
        let onRecord = self.onRecord
        return pages.sorted { $0.key < $1.key }.map { page, record in
            onRecord?(page, false)
            let left = leaveGroup(Key(frame: record.frame, page: page), pid)
            if left.count == 1 {
                if heldPid != left[0] {
                    if !held.isEmpty { pagesByProcess[heldPid] = held }
                    heldPid = left[0]
                    held = pagesByProcess.removeValue(forKey: heldPid) ?? [:]
                }
                if held.removeValue(forKey: page) != nil { onRecord?(page, false) }
            }
            return (page, record, left.count == 1 ? left[0] : nil)
        }
    }

    /// Takes `pid` out of `key`'s holders; returns those left (the set is dropped when fewer
    /// than two are).
    private func leaveGroup(_ key: Key, _ pid: pid_t) -> [pid_t] {
        guard let old = holders[key] else { return [] }
        let memo = Int64(old) << 32 | Int64(UInt32(bitPattern: pid))
        let to: Int32
        if let hit = leftBy[memo] {
            to = hit
        } else {
            let left = groups[Int(old)].pids.filter { $0 != pid }
            if left.count < 2 {
                // Not memoised: the set is gone, but who is left is asked for.
                holders[key] = nil
                release(old)
                return left
            }
            to = retain(left)
            groups[Int(to)].uses -= 1  // counted below, like a hit
            leftBy[memo] = to
        }
        let left = groups[Int(to)].pids
        if to != old {
            groups[Int(to)].uses += 1
            holders[key] = to
            release(old)
        }
        return left
    }
}
