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

    private func pids(of key: Key) -> [pid_t] { holders[key].map { groups[Int($0)].pids } ?? [] }

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
    }

    /// Sets `key`'s holders (none when fewer than two).
    private func setHolders(_ key: Key, _ pids: [pid_t]) {
        let old = holders[key]
        if pids.count >= 2 {
            if let old, groups[Int(old)].pids == pids { return }
            holders[key] = retain(pids)
        } else {
            holders[key] = nil
        }
        if let old { release(old) }
    }

    /// Records that `pids` all map `frame` at `page`.
    public func share(page: UInt64, frame: UInt64, kind: PageKind, region: String, among pids: [pid_t]) {
        let key = Key(frame: frame, page: page)
        let current = self.pids(of: key)
        var set = current
        for pid in pids where !set.contains(pid) { set.append(pid) }
        guard set.count >= 2 else { return }
        if set.count != current.count { set.sort() }
        setHolders(key, set)
        for pid in set where pagesByProcess[pid]?[page] == nil {
            pagesByProcess[pid, default: [:]][page] = PageRecord(frame: frame, kind: kind, region: region)
            onRecord?(page, true)
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
        let key = Key(frame: record.frame, page: page)
        let left = pids(of: key).filter { $0 != pid }
        setHolders(key, left)
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
        let pages = pagesByProcess[pid] ?? [:]
        return pages.sorted { $0.key < $1.key }.map { page, record in
            let left = leaving(pid, page: page)
            return (page, record, left.count == 1 ? left[0] : nil)
        }
    }
}
