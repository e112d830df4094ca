import CCowtrace
import Glibc

/// Each thread's blocked-signal mask, as far as it matters to us: whether SIGTRAP is blocked.
///
/// A perf sigtrap raised while the thread blocks SIGTRAP is queued as an asynchronous signal
/// (si_perf_flags has TRAP_PERF_FLAG_ASYNC) and stops the thread only once it unblocks, long
/// after the store: such a trap cannot name the store. And a single-step trap is a forced
/// SIGTRAP: the kernel unblocks SIGTRAP in the thread's mask to deliver it, which the
/// program must not see. So the mask is read (PTRACE_GETSIGMASK) when it may have changed:
/// at a thread's first stop, at the exits of the syscalls that set it, and at a signal
/// handler's entry (the handler runs with its sa_mask added).
final class SignalMasks {
    private var masks: [pid_t: UInt64] = [:]
    /// The program's mask of each thread whose SIGTRAP we unblocked for a step, until it is
    /// put back: kept apart from `masks`, which a stop met mid-step may invalidate (a step
    /// cut short by another stop, then abandoned once the process shares nothing, left
    /// SIGTRAP unblocked for good).
    private var unblocked: [pid_t: UInt64] = [:]

    static let sigtrapBit: UInt64 = 1 << UInt64(SIGTRAP - 1)

    /// Syscalls whose exit may leave a different mask (the *sigmask variants restore theirs
    /// on return, but a handler run meanwhile, or rt_sigreturn, changes it).
    static let changingSyscalls: Set<String> = [
        "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "ppoll", "pselect6", "epoll_pwait", "epoll_pwait2",
        "io_pgetevents", "rt_sigtimedwait", "signalfd4", "execve", "execveat",
    ]

    /// The thread's mask, read now if not known.
    func mask(_ tid: pid_t) -> UInt64? {
        if let known = masks[tid] { return known }
        // Mid-step the kernel's mask is ours (SIGTRAP unblocked): the program's is the one kept.
        if let programs = unblocked[tid] { return programs }
        var mask: UInt64 = 0
        guard (try? systemCall("ptrace(PTRACE_GETSIGMASK)", pid: tid, { cow_ptrace_getsigmask(tid, &mask) })) != nil else { return nil }
        masks[tid] = mask
        return mask
    }

    func blocksTrap(_ tid: pid_t) -> Bool { (mask(tid) ?? 0) & Self.sigtrapBit != 0 }

    /// The mask may have changed (a syscall or a signal handler).
    func invalidate(_ tid: pid_t) { masks[tid] = nil }

    /// A forked child starts with the mask of the thread that forked it (read now if not
    /// known: the parent's is needed too, now that it shares pages).
    func inherit(_ child: pid_t, from parent: pid_t) {
        guard unblocked[parent] == nil, let mask = mask(parent) else { return }
        masks[child] = mask
    }

    func forget(_ tid: pid_t) {
        masks[tid] = nil
        unblocked[tid] = nil
    }

    /// Before a single step (no signal delivered with it) of a thread that blocks SIGTRAP:
    /// unblocked for the step, so that its forced trap finds it unblocked. A forced SIGTRAP
    /// that finds it blocked also resets the program's SIGTRAP handler to SIG_DFL, a trace
    /// that would outlive the session. `restoreAfterStep` blocks it again.
    func unblockTrapForStep(_ tid: pid_t) {
        guard let mask = masks[tid], mask & Self.sigtrapBit != 0 else { return }
        if (try? systemCall("ptrace(PTRACE_SETSIGMASK)", pid: tid) { cow_ptrace_setsigmask(tid, mask & ~Self.sigtrapBit) }) != nil {
            unblocked[tid] = unblocked[tid] ?? mask
        }
    }

    /// After a single step of a thread that blocks SIGTRAP: the forced step trap unblocked
    /// it; put the program's mask back.
    func restoreAfterStep(_ tid: pid_t) {
        guard let mask = unblocked.removeValue(forKey: tid) else { return }
        _ = try? systemCall("ptrace(PTRACE_SETSIGMASK)", pid: tid) { cow_ptrace_setsigmask(tid, mask) }
    }
}
