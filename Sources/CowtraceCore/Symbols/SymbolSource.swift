import Glibc

/// What the tracker and the engines ask of the symbol layer: backtraces and names for a
/// split, and when what they know of a process goes stale. `Symbolizer` (libunwind and
/// libdw) is the real one; a test can give frames of its own.
public protocol SymbolSource: AnyObject {
    /// The call stack of thread `tid` with registers `regs` (frame #0 is regs.rip).
    func backtrace(pid: pid_t, tid: pid_t, regs: Registers, mappings: [Mapping]) -> [BacktraceFrame]
    /// Frames already unwound elsewhere (perf samples), named.
    func frames(pid: pid_t, ips: [UInt64], mappings: [Mapping]) -> [BacktraceFrame]
    /// The text of a "file:line" source line, when readable.
    func sourceText(_ location: String) -> String?
    /// The process's mappings changed.
    func invalidate(_ pid: pid_t)
    /// A forked child maps what its parent maps.
    func inherit(child: pid_t, from parent: pid_t)
    /// A thread is gone.
    func forget(pid: pid_t, tid: pid_t)
    /// The process is gone (exit or exec).
    func processGone(_ pid: pid_t)
    /// Reads ahead what naming frames of `pid` will need (the tracer is idle).
    func warm(pid: pid_t, mappings: [Mapping])
}

extension SymbolSource {
    public func warm(pid: pid_t, mappings: [Mapping]) {}
}

extension Symbolizer: SymbolSource {}
