/// A new process between its creation and its first instruction. It may not run until the
/// ledger is built at its parent's clone exit (what it wrote first would go unwatched), and
/// its first stop and its parent's clone event come in either order.
struct NewProcess {
    enum Phase: Equatable {
        /// The parent reported the clone; the ledger is still to be built; no first stop yet.
        case awaitingLedger
        /// Announced and the ledger built; its first stop is still to come.
        case awaitingFirstStop
        /// Its first stop came before its parent reported the clone: held there.
        case heldUnannounced
        /// Its first stop came, announced, the ledger still to be built: held there.
        case heldForLedger
    }

    var phase: Phase
    /// What its clone asked for: its CLONE_CHILD_SETTID store may land any time before its
    /// first instruction.
    var request: CloneRequest?

    var isHeld: Bool { phase == .heldUnannounced || phase == .heldForLedger }
    /// Its parent reported the clone (PTRACE_EVENT_FORK/VFORK/CLONE).
    var isAnnounced: Bool { phase != .heldUnannounced }
}

/// A fork-like clone between its entry and its exit in the thread that makes it.
struct CloneInFlight {
    /// The parent's frames before the clone.
    var snapshot: CowTracker.Snapshot
    /// Taken at the clone's event stop (-q runs a process that shares nothing with
    /// PTRACE_CONT), after the kernel made the child.
    var takenLate: Bool
    /// The process's other threads are held stopped until the clone's exit.
    var holdsSiblings: Bool
    /// Nothing but the kernel's CLONE_PARENT_SETTID store can change the parent's pages from
    /// the snapshot to the clone's exit: it is one thread, or its other threads were all
    /// stopped before the snapshot (and are held).
    var parentStill: Bool
    /// The parent's frames as the snapshot read them, where the snapshot was made to hold the
    /// frames shared at the clone instead (read at the event stop, in the child).
    var parentFrames: [UInt64]? = nil
    /// The child's pagemap entries of the snapshot's pages, read at the clone's event stop
    /// (a late snapshot): until the clone's exit only its CLONE_CHILD_SETTID store can change them.
    var childEntries: [PagemapEntry?]? = nil
}
