import CCowtrace
import Glibc

/// Which page faults stop a thread under the fault engine: only those on pages some traced
/// process shares. A fault on any other page (a first touch, a text fault, the stack
/// growing, a write to a page the other side has copied already) copies nothing, yet
/// without the filter each is a ptrace stop; a forked shell takes as many of those as real
/// copies before it execs. The filter counts the ledger's records per bit of a hashed
/// bitmap, updated as records come and go, before any tracee runs again: a fault on a
/// recorded page always stops its thread. Exact by construction: a bit may be shared by
/// other pages, so an unrecorded page may still stop (and is let go, as before), never the
/// other way round.
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

    /// A (process, page) record entered the ledger.
    func add(_ page: UInt64) { cow_fault_filter_add(filter, page) }

    /// A (process, page) record left the ledger.
    func remove(_ page: UInt64) { cow_fault_filter_remove(filter, page) }

    func isMarked(_ page: UInt64) -> Bool { cow_fault_filter_marked(filter, page) != 0 }

    /// Whether a fault the program drops also drops its sigtrap (Linux 6.10+): only then does
    /// an event with nothing marked stop nothing.
    let holdsTrapsBack: Bool = FaultFilter.kernelAtLeast(6, 10)

    static func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
        var name = utsname()
        guard uname(&name) == 0 else { return false }
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return releaseAtLeast(release, major, minor)
    }

    /// "6.18.0-1-amd64" against 6.10.
    static func releaseAtLeast(_ release: String, _ major: Int, _ minor: Int) -> Bool {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return false }
        return (numbers[0], numbers[1]) >= (major, minor)
    }
}
