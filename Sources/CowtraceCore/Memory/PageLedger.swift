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
public final class PageLedger {
    struct Key: Hashable {
        let frame: UInt64
        let page: UInt64
    }

    private var pagesByProcess: [pid_t: [UInt64: PageRecord]] = [:]
    private var holders: [Key: Set<pid_t>] = [:]

    public init() {}

    /// The pages `pid` shares with another traced process.
    public func sharedPages(of pid: pid_t) -> [UInt64: PageRecord] { pagesByProcess[pid] ?? [:] }
    /// The same, without building anything (nil when nothing is shared).
    public func sharedPagesView(of pid: pid_t) -> [UInt64: PageRecord]? { pagesByProcess[pid] }
    public func sharedCount(of pid: pid_t) -> Int { pagesByProcess[pid]?.count ?? 0 }
    public func record(_ pid: pid_t, _ page: UInt64) -> PageRecord? { pagesByProcess[pid]?[page] }
    public var processes: [pid_t] { Array(pagesByProcess.keys) }
    public var totalShared: Int { pagesByProcess.values.reduce(0) { $0 + $1.count } }

    /// The processes mapping `frame` at `page`.
    public func holders(frame: UInt64, page: UInt64) -> Set<pid_t> { holders[Key(frame: frame, page: page)] ?? [] }

    /// Records that `pids` all map `frame` at `page`.
    public func share(page: UInt64, frame: UInt64, kind: PageKind, region: String, among pids: [pid_t]) {
        let key = Key(frame: frame, page: page)
        var set = holders[key] ?? []
        set.formUnion(pids)
        guard set.count >= 2 else { return }
        holders[key] = set
        for pid in set where pagesByProcess[pid]?[page] == nil {
            pagesByProcess[pid, default: [:]][page] = PageRecord(frame: frame, kind: kind, region: region)
        }
    }

    /// `pid` no longer maps its old frame at `page` (it wrote it, or the page is gone).
    /// Returns the processes left on the old frame; with one left, the page is private to it.
    @discardableResult
    public func leave(_ pid: pid_t, page: UInt64) -> Set<pid_t> {
        guard let record = pagesByProcess[pid]?.removeValue(forKey: page) else { return [] }
        if pagesByProcess[pid]?.isEmpty == true { pagesByProcess[pid] = nil }
        let key = Key(frame: record.frame, page: page)
        var set = holders[key] ?? []
        set.remove(pid)
        if set.count <= 1 {
            holders[key] = nil
            for last in set {
                pagesByProcess[last]?[page] = nil
                if pagesByProcess[last]?.isEmpty == true { pagesByProcess[last] = nil }
            }
        } else {
            holders[key] = set
        }
        return set
    }

    /// Every process on (frame, page) moved to `newFrame` together: migration, not a copy.
    public func migrate(page: UInt64, from frame: UInt64, to newFrame: UInt64) {
        let key = Key(frame: frame, page: page)
        guard let set = holders.removeValue(forKey: key) else { return }
        holders[Key(frame: newFrame, page: page)] = set
        for pid in set { pagesByProcess[pid]?[page]?.frame = newFrame }
    }

    /// Forgets a process (exit, exec); returns its pages, so drops can be reported.
    public func removeProcess(_ pid: pid_t) -> [(page: UInt64, record: PageRecord, remaining: Set<pid_t>)] {
        let pages = pagesByProcess[pid] ?? [:]
        return pages.sorted { $0.key < $1.key }.map { page, record in
            (page, record, leave(pid, page: page))
        }
    }
}
