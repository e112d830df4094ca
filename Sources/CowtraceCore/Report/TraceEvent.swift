import Glibc

/// Everything a trace reports, as final values: detection decides (a split is a split,
/// the copy-or-migration check already made), renderers only render. The text log, the
/// JSON log and the summary are consumers of one ordered stream of these (`EventStream`),
/// and a saved JSON log reads back into them (`JSONEventReader`).
public enum TraceEvent: Sendable {
    /// A logged syscall's entry: the text log opens its line (strace prints the arguments
    /// before the call blocks); nothing else uses it.
    case syscallEntry(tid: pid_t, name: String, arguments: String)
    /// A logged syscall finished (or never returned).
    case syscall(SyscallRecord)
    /// A process or thread was created.
    case clone(CloneRecord)
    /// The pages a clone left shared between parent and child.
    case shared(SharedPages)
    case split(Split)
    case reuse(Reuse)
    case drop(Drop)
    /// A signal delivered to a tracee (strace's "--- SIGCHLD {…} ---").
    case signal(tid: pid_t, text: String)
    case exit(ExitRecord)
    /// A remark of cowtrace's own ("cowtrace: …").
    case note(String)
    /// Lines of text printed as they are (a break's report); not an event of the JSON log.
    case text([String])
    case summary(CowSummary)
}

/// A finished syscall as the log shows it.
public struct SyscallRecord: Sendable, Equatable {
    public let tid: pid_t
    public let name: String
    /// The arguments printed at entry, and those only known at exit (output buffers).
    public let entryText: String
    public let exitText: String
    /// What follows " = ": the value, "-1 ENOENT (No such file or directory)", "?".
    public let result: String
    /// The value returned (-1 for an error), nil where the call did not return.
    public let ret: Int64?
    public let errno: String?

    public init(tid: pid_t, name: String, entryText: String, exitText: String, result: String, ret: Int64?, errno: String?) {
        self.tid = tid
        self.name = name
        self.entryText = entryText
        self.exitText = exitText
        self.result = result
        self.ret = ret
        self.errno = errno
    }

    /// The whole line as strace prints it, without its pid prefix and padding.
    public var line: String { name + "(" + entryText + exitText + ") = " + result }
}

/// A clone-family call that created `child`.
public struct CloneRecord: Sendable, Equatable {
    public let pid: pid_t
    public let child: pid_t
    public let syscall: String
    public let flags: [String]
    public let exitSignal: String?
    public let childTidPointer: UInt64?
    public let parentTid: UInt64?
    public let sharesMemory: Bool
    public let sharedPages: Int

    public init(pid: pid_t, child: pid_t, syscall: String, flags: [String], exitSignal: String?, childTidPointer: UInt64?,
                parentTid: UInt64?, sharesMemory: Bool, sharedPages: Int) {
        self.pid = pid
        self.child = child
        self.syscall = syscall
        self.flags = flags
        self.exitSignal = exitSignal
        self.childTidPointer = childTidPointer
        self.parentTid = parentTid
        self.sharesMemory = sharesMemory
        self.sharedPages = sharedPages
    }
}

public struct SharedPages: Sendable, Equatable {
    public let parent: pid_t, child: pid_t, call: String, anon: Int, file: Int, zero: Int
    public var total: Int { anon + file + zero }

    public init(parent: pid_t, child: pid_t, call: String, anon: Int, file: Int, zero: Int) {
        (self.parent, self.child, self.call, self.anon, self.file, self.zero) = (parent, child, call, anon, file, zero)
    }
}

/// The last process on a frame wrote it: the kernel reused the page instead of copying.
public struct Reuse: Sendable, Equatable {
    public let pid: pid_t, page: UInt64, region: String, frame: UInt64, ip: UInt64?

    public init(pid: pid_t, page: UInt64, region: String, frame: UInt64, ip: UInt64?) {
        (self.pid, self.page, self.region, self.frame, self.ip) = (pid, page, region, frame, ip)
    }
}

/// Shared pages that left a process's address space (munmap, MADV_DONTNEED, exec, exit).
public struct Drop: Sendable, Equatable {
    public struct Page: Sendable, Equatable {
        public let page: UInt64, region: String, frame: UInt64
        public init(page: UInt64, region: String, frame: UInt64) { (self.page, self.region, self.frame) = (page, region, frame) }
    }
    public let pid: pid_t
    public let pages: [Page]
    public let reason: String

    public init(pid: pid_t, pages: [Page], reason: String) { (self.pid, self.pages, self.reason) = (pid, pages, reason) }
}

/// A thread ended. Only a process's end (its leader) is a JSON event.
public struct ExitRecord: Sendable, Equatable {
    public enum How: Sendable, Equatable {
        case exited(code: Int32)
        case killed(signal: Int32, coreDumped: Bool)
    }
    public let tid: pid_t
    public let isLeader: Bool
    public let how: How

    public init(tid: pid_t, isLeader: Bool, how: How) { (self.tid, self.isLeader, self.how) = (tid, isLeader, how) }
}
