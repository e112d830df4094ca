import CCowtrace
import Glibc

/// The one place cowtrace waits for its tracees (rr's WaitManager: "all waits must go
/// through" it). Each status is reaped once, classified once (`WaitStatus`), and a status
/// reaped by a part of the tracer that was waiting for something else (a pause, a settle, a
/// single step at a break) is queued here for the event loop instead of being dropped.
final class Waiter {
    struct Reaped {
        let pid: pid_t
        let status: WaitStatus
    }

    /// Statuses reaped but not yet handled, oldest first.
    private var queue: [Reaped] = []

    /// Why a wait returned without a status.
    enum Nothing: Error {
        /// No traced child is left (ECHILD).
        case noChildren
        /// A signal arrived (only when asked to be interruptible).
        case interrupted
    }

    /// Blocks until `pid` (-1: any tracee) changes state. EINTR is retried unless
    /// `interruptible`, where it is returned so the caller can look at Ctrl-C first.
    /// `untracedChild`: a child of ours not traced yet (the spawn helper before it is seized),
    /// whose stop only WUNTRACED reports.
    func wait(for pid: pid_t = -1, interruptible: Bool = false, untracedChild: Bool = false) throws -> Reaped {
        var raw: Int32 = 0
        let options = cow_WALL | (untracedChild ? WUNTRACED : 0)
        while true {
            let got = waitpid(pid, &raw, options)
            if got > 0 { return Reaped(pid: got, status: WaitStatus(raw: raw)) }
            let err = errno
            if err == EINTR {
                if interruptible { throw Nothing.interrupted }
                continue
            }
            if err == ECHILD { throw Nothing.noChildren }
            throw CowtraceError(call: "waitpid", pid: pid, errno: err)
        }
    }

    /// Like `wait(for:)`, but nil where the tracee is gone without a status to reap.
    func reap(_ pid: pid_t, untracedChild: Bool = false) -> Reaped? { try? wait(for: pid, untracedChild: untracedChild) }

    /// Keeps a status for the event loop.
    func enqueue(_ reaped: Reaped) { queue.append(reaped) }

    /// The oldest queued status, if any.
    func dequeue() -> Reaped? { queue.isEmpty ? nil : queue.removeFirst() }

    func hasQueued(_ pid: pid_t) -> Bool { queue.contains { $0.pid == pid } }

    /// Takes the queued statuses `which` selects (processes being let go), keeping the rest.
    func take(where which: (Reaped) -> Bool) -> [Reaped] {
        let taken = queue.filter(which)
        queue.removeAll(where: which)
        return taken
    }

    /// Empties the queue (everything is being let go), returning what it held.
    func drain() -> [Reaped] {
        defer { queue.removeAll() }
        return queue
    }
}
