import CCowtrace

/// Which page faults stop a thread under the fault engine: only those on pages that may be
/// shared. A fault on a page no process shares (a first touch, a text fault, the stack
/// growing) is no copy, yet without the filter each one is a ptrace stop; a forked shell
/// takes as many of those as real copies before it execs. Every page entering the ledger
/// is marked before any tracee runs again, and a page once marked stays marked until
/// nothing is shared at all, so a fault on a shared page always stops its thread. Exact by
/// construction: the bitmap is hashed, so an unshared page may still stop (and is let go,
/// as before), never the other way round.
final class FaultFilter {
    private let filter: OpaquePointer

    /// Nil where the BPF program cannot be loaded (no CAP_BPF/CAP_SYS_ADMIN, no BPF).
    init?() {
        guard let made = cow_fault_filter_create() else { return nil }
        filter = made
    }

    deinit { cow_fault_filter_destroy(filter) }

    /// Puts the filter in front of a page-fault event; false if the kernel refused.
    @discardableResult
    func attach(toEvent fd: Int32) -> Bool { cow_fault_filter_attach(filter, fd) == 0 }

    func mark(_ page: UInt64) { cow_fault_filter_mark(filter, page) }

    func isMarked(_ page: UInt64) -> Bool { cow_fault_filter_marked(filter, page) != 0 }

    /// Nothing is shared any more: every fault may run on.
    func clear() { cow_fault_filter_clear(filter) }
}
