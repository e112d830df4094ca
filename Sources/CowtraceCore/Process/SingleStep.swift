import CCowtrace
import Glibc

/// How one single step of a stopped thread ended.
enum StepOutcome {
    /// The instruction ran; the registers after it.
    case stepped(Registers)
    /// Something else stopped the thread first (a signal of the program's, a second
    /// page-fault trap the engine did not claim, its exit); the loop handles that stop.
    case stoppedBy(WaitStatus)
    /// The thread is gone, or its registers cannot be read.
    case gone
}

extension Tracer {
    /// Executes one instruction of `thread`, outside the event loop (a break's prompt, or the
    /// store a fault-engine break stopped before). A page-fault trap on the way (a store that
    /// crosses into a second shared page) goes to `ownTrap`, which records its split and claims
    /// it; the instruction is then stepped again. Any other stop is kept for the loop, never
    /// dropped: a program's signal is delivered and an exit reaped as usual.
    func stepOnce(_ thread: Tracee, ownTrap: (SignalDetails) -> Bool) -> StepOutcome {
        while true {
            guard restart(thread.tid, .singleStep), let reaped = reapRestarted(thread.tid) else { return .gone }
            if case .signalStop(SIGTRAP) = reaped.status, let info = try? Ptrace.signalDetails(thread.tid) {
                if info.code == Int32(cow_TRAP_BRKPT) || info.code == Int32(cow_TRAP_TRACE) {
                    guard let after = try? Ptrace.registers(thread.tid) else { return .gone }
                    return .stepped(after)
                }
                if ownTrap(info) { continue }
            }
            handleLater(reaped.pid, reaped.status)
            return .stoppedBy(reaped.status)
        }
    }
}
