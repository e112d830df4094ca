import Glibc

/// What the tracker reads of a process's address space: its mappings and its pagemap
/// entries. The real one reads /proc; a test gives a table of its own, so the ledger's rules
/// (clone completion, migration, reuse, hidden frames) are tested without a process.
public protocol PageTable: AnyObject {
    /// /proc/PID/maps (cached until `mappingsChanged`).
    func maps(_ pid: pid_t) -> [Mapping]
    /// The process's mappings may have changed: read them anew next time.
    func mappingsChanged(_ pid: pid_t)
    /// A child right after fork maps what its parent maps.
    func inheritMappings(child: pid_t, from parent: pid_t)
    /// `count` entries from `page`; nil where the process cannot be read.
    func entries(_ pid: pid_t, from page: UInt64, count: Int) -> [PagemapEntry]?
    /// The present pages in [start, end), in order, with their entries.
    func forEachPresent(_ pid: pid_t, from start: UInt64, to end: UInt64, _ body: (UInt64, PagemapEntry) -> Void)
    /// The process is gone: what is open for it is closed.
    func forget(_ pid: pid_t)
    /// Descriptors held open, for the debug report.
    var openCount: Int { get }
}

/// The page table of live processes: /proc/PID/maps and /proc/PID/pagemap, held by each
/// process's `TracedProcess` until it is closed.
public final class ProcPageTable: PageTable {
    private let processes: ProcessTable

    public init(processes: ProcessTable = ProcessTable()) { self.processes = processes }

    private func pagemap(_ pid: pid_t) -> Pagemap? { processes[pid].pagemap }

    public func maps(_ pid: pid_t) -> [Mapping] {
        let process = processes[pid]
        if let known = process.mappings { return known }
        let read = (try? process.readMappings()) ?? []
        process.mappings = read
        return read
    }

    public func mappingsChanged(_ pid: pid_t) { processes[pid].mappingsChanged() }

    public func inheritMappings(child: pid_t, from parent: pid_t) { processes.inheritMappings(child: child, from: parent) }

    public func entries(_ pid: pid_t, from page: UInt64, count: Int) -> [PagemapEntry]? {
        try? pagemap(pid)?.entries(from: page, count: count)
    }

    public func forEachPresent(_ pid: pid_t, from start: UInt64, to end: UInt64, _ body: (UInt64, PagemapEntry) -> Void) {
        try? pagemap(pid)?.forEachPresent(from: start, to: end, body)
    }

    public func forget(_ pid: pid_t) { processes.close(pid) }

    public var openCount: Int { processes.openDescriptors }
}
