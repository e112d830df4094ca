import Glibc

/// What cowtrace holds open and caches for one traced process (a thread group): its memory
/// (/proc/PID/mem), its pagemap, its mappings and the instructions decoded from its code.
/// One object, closed when the process exits or execs, so what is kept follows the live
/// processes and a reused pid starts from nothing. (Symbols are kept per address-space
/// layout, shared by a parent and the children forked from it: see Symbolizer.)
public final class TracedProcess {
    public let pid: pid_t
    /// Read through /proc/PID/mem, never process_vm_readv (it pins, and pinning copies).
    public let memory: TraceeMemory
    private var pagemapFile: Pagemap?
    private var pagemapFailed = false
    /// /proc/PID/maps as last read; nil once it may have changed.
    var mappings: [Mapping]?
    /// Decoded instructions by address: its fork family's table (see `InstructionTable`).
    var instructions = InstructionTable()

    init(pid: pid_t) {
        self.pid = pid
        memory = TraceeMemory(pid: pid)
    }

    var pagemap: Pagemap? {
        if pagemapFile == nil && !pagemapFailed {
            pagemapFile = try? Pagemap(pid: pid)
            pagemapFailed = pagemapFile == nil
        }
        return pagemapFile
    }

    /// Its mappings may have changed (mmap, munmap, mprotect, brk, madvise, mremap, a clone).
    func mappingsChanged() { mappings = nil }

    /// /proc/PID/maps, kept open: a fork reads its parent's again, from the start (a seq file
    /// starts over at offset 0), without a path lookup each time.
    private var mapsFile: OwnedFileDescriptor?

    /// Its mappings, read now.
    func readMappings() throws -> [Mapping] {
        if mapsFile == nil { mapsFile = try OwnedFileDescriptor.open("/proc/\(pid)/maps", flags: O_RDONLY, pid: pid) }
        guard let fd = mapsFile else { return [] }
        let bytes = try fd.readAll(what: "/proc/\(pid)/maps", pid: pid)
        return try ProcMaps.parse(bytes: bytes)
    }

    /// Everything dropped and every descriptor closed.
    func close() {
        memory.invalidate()
        pagemapFile = nil
        mapsFile = nil
        mappings = nil
        instructions = InstructionTable()
    }

    var openDescriptors: Int { (pagemapFile == nil ? 0 : 1) + (mapsFile == nil ? 0 : 1) + (memory.isOpen ? 1 : 0) }
}

/// The traced processes' resources, by pid: kept from when the tracer first sees a process
/// (`open`) until it exits or execs (`close`). A pid not open (gone, or asked about after
/// the fact) gets a passing object whose descriptors close when it is dropped: nothing is
/// kept for a process that is not traced.
public final class ProcessTable {
    private var processes: [pid_t: TracedProcess] = [:]

    public init() {}

    public subscript(pid: pid_t) -> TracedProcess { processes[pid] ?? TracedProcess(pid: pid) }

    /// A traced process (again, after exec: its address space is new).
    public func open(_ pid: pid_t) {
        if processes[pid] == nil { processes[pid] = TracedProcess(pid: pid) }
    }

    /// The process exited or exec'd (after exec the files refer to the old address space).
    public func close(_ pid: pid_t) {
        processes.removeValue(forKey: pid)?.close()
    }

    /// A child right after fork maps what its parent maps, and its code is the parent's: it
    /// joins its parent's instruction table (a forked child writes with the same instructions
    /// as its parent did before it, and with those its siblings did after their forks: every
    /// child of a pre-fork server or a shell would decode them again, reading its memory).
    func inheritMappings(child: pid_t, from parent: pid_t) {
        open(child)
        guard let parent = processes[parent], let child = processes[child] else { return }
        if let mappings = parent.mappings { child.mappings = mappings }
        if child.instructions.byAddress.isEmpty { child.instructions = parent.instructions }
    }

    /// For the debug report: what is kept must follow the live processes.
    public var count: Int { processes.count }
    public var openDescriptors: Int { processes.values.reduce(0) { $0 + $1.openDescriptors } }
}

/// Instructions decoded from the code of a fork family: a child maps its parent's code at the
/// same addresses, so what one of them decodes serves them all. A process whose code changes
/// (exec, or a mapping of code changed: `InstructionCache.invalidate`) leaves for a table of
/// its own; the others keep theirs. Dropped with the last process holding it.
final class InstructionTable {
    var byAddress: [UInt64: DecodedInstruction] = [:]
}
