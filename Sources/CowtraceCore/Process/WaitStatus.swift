import CCowtrace
import Glibc

/// A decoded waitpid status. Pure: built from the raw integer alone, so it is testable
/// without a process (rr's WaitStatus does the same).
public enum WaitStatus: Equatable, Sendable {
    case exited(code: Int32)
    case killed(signal: Int32, coreDumped: Bool)
    /// A syscall-entry or -exit stop (SIGTRAP|0x80 with PTRACE_O_TRACESYSGOOD).
    case syscallStop
    /// A PTRACE_EVENT stop; `signal` is the stop signal (SIGTRAP, or the group-stop
    /// signal for PTRACE_EVENT_STOP).
    case eventStop(PtraceEvent, signal: Int32)
    /// A signal-delivery stop, or a group-stop of a tracee not attached with PTRACE_SEIZE.
    case signalStop(signal: Int32)
    case continued
    case unknown(raw: Int32)

    public init(raw: Int32) {
        if cow_wifexited(raw) != 0 {
            self = .exited(code: cow_wexitstatus(raw))
        } else if cow_wifsignaled(raw) != 0 {
            self = .killed(signal: cow_wtermsig(raw), coreDumped: cow_wcoredump(raw) != 0)
        } else if cow_wifstopped(raw) != 0 {
            let signal = cow_wstopsig(raw)
            let eventCode = (raw >> 16) & 0xffff
            if signal == SIGTRAP | 0x80 {
                self = .syscallStop
            } else if eventCode != 0 {
                if let event = PtraceEvent(rawValue: eventCode) {
                    self = .eventStop(event, signal: signal)
                } else {
                    self = .unknown(raw: raw)
                }
            } else {
                self = .signalStop(signal: signal)
            }
        } else if cow_wifcontinued(raw) != 0 {
            self = .continued
        } else {
            self = .unknown(raw: raw)
        }
    }
}
