import Glibc

/// What the tracker reads of a process's address space: its mappings and its pagemap
/// entries. The real one reads /proc; a test gives a table of its own, so the ledger's rules
/// (clone completion, migration, reuse, hidden frames) are tested without a process.
public protocol PageTable: AnyObject {
    /// /proc/PID/maps, read anew.
    func maps(_ pid: pid_t) -> [Mapping]
    /// `count` entries from `page`; nil where the process cannot be read.
    func entries(_ pid: pid_t, from page: UInt64, count: Int) -> [PagemapEntry]?
    /// The present pages in [start, end), in order, with their entries.
    func forEachPresent(_ pid: pid_t, from start: UInt64, to end: UInt64, _ body: (UInt64, PagemapEntry) -> Void)
    /// The process is gone or exec'd: what is open for it is closed.
    func forget(_ pid: pid_t)
    /// Descriptors held open, for the debug report.
    var openCount: Int { get }
}

/// The page table of live processes: /proc/PID/maps and /proc/PID/pagemap, one open
/// pagemap per process until it is forgotten.
public final class ProcPageTable: PageTable {
    private var pagemaps: [pid_t: Pagemap] = [:]

    public init() {}

    private func pagemap(_ pid: pid_t) -> Pagemap? {
        if let p = pagemaps[pid] { return p }
        guard let p = try? Pagemap(pid: pid) else { return nil }
        pagemaps[pid] = p
        return p
    }

    public func maps(_ pid: pid_t) -> [Mapping] { (try? ProcMaps.read(pid: pid)) ?? [] }

    public func entries(_ pid: pid_t, from page: UInt64, count: Int) -> [PagemapEntry]? {
        try? pagemap(pid)?.entries(from: page, count: count)
    }

    public func forEachPresent(_ pid: pid_t, from start: UInt64, to end: UInt64, _ body: (UInt64, PagemapEntry) -> Void) {
        try? pagemap(pid)?.forEachPresent(from: start, to: end, body)
    }

    public func forget(_ pid: pid_t) { pagemaps[pid] = nil }

    public var openCount: Int { pagemaps.count }
}
