/// How user-mode writes are caught between syscalls (SPEC "How it works").
public enum EngineKind: String, Sendable, CaseIterable {
    /// Single-steps every thread that shares pages: the reference.
    case step
    /// A perf page-fault event with sigtrap per thread: stops only at faults.
    case fault
    /// perf ring buffers of page-fault samples, replayed at the remaining stops: no stop per fault.
    case record
}
