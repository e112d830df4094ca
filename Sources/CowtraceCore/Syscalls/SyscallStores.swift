/// The user memory a finished syscall may have stored into, from its arguments and result.
/// With frame numbers a copied page names its syscall by itself; without them (no
/// CAP_SYS_ADMIN) two processes may each have written a page both see as copied, and this
/// says whether a syscall is one of the candidates. Calls not listed may store anywhere.
public enum SyscallStores: Sendable, Equatable {
    /// Stores only inside these (address, length) ranges.
    case ranges([(address: UInt64, length: UInt64)])
    /// Not known: any page may have been written.
    case anywhere

    public static func == (a: SyscallStores, b: SyscallStores) -> Bool {
        switch (a, b) {
        case (.anywhere, .anywhere): true
        case (.ranges(let x), .ranges(let y)): x.map(\.address) == y.map(\.address) && x.map(\.length) == y.map(\.length)
        default: false
        }
    }

    /// Whether the call may have stored into the 4 KiB page at `page`.
    public func mayWrite(page: UInt64) -> Bool {
        switch self {
        case .anywhere: return true
        case .ranges(let ranges):
            return ranges.contains { r in r.length > 0 && r.address < page &+ 4096 && r.address &+ r.length > page }
        }
    }

    /// Calls that store no user memory at all (their effects are on the kernel's side).
    static let none: Set<String> = [
        "write", "pwrite64", "writev", "pwritev", "close", "dup", "dup2", "dup3", "lseek", "fsync", "fdatasync",
        "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getpgrp", "getpgid", "getsid",
        "setsid", "setpgid", "exit", "exit_group", "kill", "tkill", "tgkill", "munmap", "mprotect", "madvise",
        "brk", "mmap", "mremap", "msync", "mlock", "munlock", "sched_yield", "openat", "open", "creat", "unlink",
        "unlinkat", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "chdir", "fchdir", "chmod",
        "fchmod", "fchmodat", "chown", "fchown", "fchownat", "access", "faccessat", "faccessat2", "shutdown",
        "listen", "bind", "connect", "sendto", "sendmsg", "set_tid_address", "alarm", "pause", "umask",
        "execve", "execveat", "fork", "vfork", "setuid", "setgid", "setreuid", "setregid", "fcntl", "flock",
        "ftruncate", "truncate", "sync", "syncfs", "pkey_mprotect", "membarrier", "close_range", "set_robust_list",
        "sched_setaffinity", "setsockopt", "epoll_ctl", "sync_file_range", "fadvise64", "fallocate", "socket",
        "sendfile", "splice", "tee", "setitimer", "timerfd_settime", "eventfd2", "epoll_create1", "inotify_add_watch",
        "setrlimit", "sched_setscheduler", "sched_setparam", "ioprio_set", "link", "linkat", "symlink",
        "symlinkat", "mknod", "mknodat", "kcmp", "rt_sigreturn",
    ]

    /// The address ranges a finished call may have taken pages out of (munmap, madvise's
    /// MADV_DONTNEED, mremap's old range, mmap over a fixed range): checked for drops at its
    /// exit. `.anywhere` where the range is not in the arguments (brk, shmdt).
    public static func unmapped(_ call: SyscallArguments, _ outcome: SyscallOutcome) -> SyscallStores {
        let a = call.values
        guard a.count >= 2 else { return .ranges([]) }
        switch call.name {
        case "munmap", "madvise", "mremap":
            return .ranges([(a[0], a[1])])
        case "mmap":
            // Without MAP_FIXED (0x10) or MAP_FIXED_NOREPLACE the new range replaced nothing.
            if case .value(let v) = outcome, a.count > 3, a[3] & 0x10 != 0 { return .ranges([(UInt64(bitPattern: v), a[1])]) }
            return .ranges([])
        case "brk", "shmdt", "remap_file_pages":
            return .anywhere
        default:
            return .ranges([])
        }
    }

    /// What a finished call's exit must re-read: its stores and what it may have unmapped.
    /// `clone` is the clone-family request decoded at entry (clone3's struct is in memory).
    public static func changed(_ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest? = nil) -> SyscallStores {
        switch (of(call, outcome, clone: clone), unmapped(call, outcome)) {
        case (.ranges(let stores), .ranges(let dropped)): .ranges(stores + dropped)
        default: .anywhere
        }
    }

    /// The terminal and descriptor requests programs make all the time (isatty is TCGETS),
    /// by what they store at their argument: request -> bytes. Any other request may store
    /// anywhere (a driver's struct with pointers in it).
    static let ioctlStores: [UInt32: UInt64] = [
        0x5401: 36,  // TCGETS: struct termios (the kernel's, 36 bytes)
        0x540F: 4,  // TIOCGPGRP: pid_t
        0x5413: 8,  // TIOCGWINSZ: struct winsize
        0x541B: 4,  // FIONREAD: int
        0x5429: 4,  // TIOCGSID: pid_t
        0x5402: 0, 0x5403: 0, 0x5404: 0,  // TCSETS, TCSETSW, TCSETSF: read their argument
        0x5410: 0, 0x5414: 0,  // TIOCSPGRP, TIOCSWINSZ
        0x5421: 0, 0x5452: 0, 0x5450: 0, 0x5451: 0,  // FIONBIO, FIOASYNC, FIONCLEX, FIOCLEX
    ]

    static func ioctl(request: UInt64, argument: UInt64) -> SyscallStores {
        // The request is an unsigned int: the upper half of the register is not looked at.
        guard let length = ioctlStores[UInt32(truncatingIfNeeded: request)] else { return .anywhere }
        return .ranges(length > 0 && argument != 0 ? [(argument, length)] : [])
    }

    public static func of(_ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest? = nil) -> SyscallStores {
        let a = call.values
        func at(_ i: Int, _ length: UInt64) -> [(address: UInt64, length: UInt64)] {
            i < a.count && a[i] != 0 ? [(a[i], length)] : []
        }
        let result: UInt64 = if case .value(let v) = outcome, v > 0 { UInt64(v) } else { 0 }
        if case .error = outcome { return .ranges([]) }  // failed: nothing stored
        if none.contains(call.name) { return .ranges([]) }
        switch call.name {
        case "read", "pread64", "getcwd", "getrandom":
            return .ranges(call.name == "getcwd" || call.name == "getrandom" ? at(0, result) : at(1, result))
        case "readlink": return .ranges(at(1, result))
        case "readlinkat": return .ranges(at(2, result))
        case "getdents64", "getdents": return .ranges(at(1, result))
        case "pipe", "pipe2": return .ranges(at(0, 8))
        case "socketpair": return .ranges(at(3, 8))
        case "wait4": return .ranges(at(1, 4) + at(3, 144))
        case "waitid": return .ranges(at(2, 128) + at(4, 144))
        case "clock_gettime", "clock_getres": return .ranges(at(1, 16))
        case "gettimeofday": return .ranges(at(0, 16) + at(1, 8))
        case "time": return .ranges(at(0, 8))
        case "nanosleep": return .ranges(at(1, 16))
        case "clock_nanosleep": return .ranges(at(3, 16))
        case "fstat", "stat", "lstat": return .ranges(at(1, 144))
        case "newfstatat": return .ranges(at(2, 144))
        case "statx": return .ranges(at(4, 256))
        case "uname": return .ranges(at(0, 390))
        case "sysinfo": return .ranges(at(0, 112))
        case "times": return .ranges(at(0, 32))
        case "getrlimit": return .ranges(at(1, 16))
        case "prlimit64": return .ranges(at(3, 16))
        case "getrusage": return .ranges(at(1, 144))
        case "rt_sigprocmask": return .ranges(at(2, a.count > 3 ? a[3] : 8))
        case "rt_sigaction": return .ranges(at(2, 32))
        case "sigaltstack": return .ranges(at(1, 24))
        case "sched_getaffinity": return .ranges(at(2, result))
        case "epoll_wait", "epoll_pwait": return .ranges(at(1, result * 12))
        case "poll", "ppoll": return .ranges(at(0, (a.count > 1 ? a[1] : 0) * 8))
        case "accept", "accept4", "getsockname", "getpeername":
            // A socket address of at most *addrlen bytes (128: sockaddr_storage), and the length.
            return .ranges(at(1, 128) + at(2, 4))
        case "recvfrom": return .ranges(at(1, result) + at(4, 128) + at(5, 4))
        case "fstatfs", "statfs": return .ranges(at(1, 120))
        case "rseq": return .ranges(at(0, a.count > 1 ? a[1] : 32))  // registration fills in the area
        case "futex":
            // FUTEX_WAIT / FUTEX_WAKE (and their PRIVATE and BITSET forms) store nothing.
            let op = (a.count > 1 ? a[1] : 0) & 0x7f
            return [0, 1, 9, 10].contains(op) ? .ranges([]) : .anywhere
        case "clone", "clone3":
            // In the parent: the child's TID at parent_tid (CLONE_PARENT_SETTID), the pidfd
            // (CLONE_PIDFD). CLONE_CHILD_SETTID is the child's store, checked at its first stop.
            // clone3's pointers are in its struct, read at entry: unreadable, unbounded.
            guard let request = clone ?? (call.name == "clone" && a.count >= 5 ? CloneRequest.clone(arguments: a) : nil) else {
                return .anywhere
            }
            return .ranges([request.parentTidPointer, request.pidfdPointer].compactMap { $0 }.filter { $0 != 0 }.map { ($0, 4) })
        case "ioctl":
            return ioctl(request: a.count > 1 ? a[1] : 0, argument: a.count > 2 ? a[2] : 0)
        default:
            return .anywhere
        }
    }
}
