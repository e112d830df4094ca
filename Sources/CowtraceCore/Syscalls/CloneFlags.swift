/// CLONE_* flags, in the order strace prints them (its xlat/clone_flags.in, then clone3_flags.in).
public struct CloneFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let vm = CloneFlags(rawValue: 0x100)
    public static let fs = CloneFlags(rawValue: 0x200)
    public static let files = CloneFlags(rawValue: 0x400)
    public static let sighand = CloneFlags(rawValue: 0x800)
    public static let pidfd = CloneFlags(rawValue: 0x1000)
    public static let ptrace = CloneFlags(rawValue: 0x2000)
    public static let vfork = CloneFlags(rawValue: 0x4000)
    public static let parent = CloneFlags(rawValue: 0x8000)
    public static let thread = CloneFlags(rawValue: 0x10000)
    public static let newns = CloneFlags(rawValue: 0x20000)
    public static let sysvsem = CloneFlags(rawValue: 0x40000)
    public static let settls = CloneFlags(rawValue: 0x80000)
    public static let parentSettid = CloneFlags(rawValue: 0x100000)
    public static let childCleartid = CloneFlags(rawValue: 0x200000)
    public static let untraced = CloneFlags(rawValue: 0x800000)
    public static let childSettid = CloneFlags(rawValue: 0x1000000)
    public static let newcgroup = CloneFlags(rawValue: 0x2000000)
    public static let newuts = CloneFlags(rawValue: 0x4000000)
    public static let newipc = CloneFlags(rawValue: 0x8000000)
    public static let newuser = CloneFlags(rawValue: 0x10000000)
    public static let newpid = CloneFlags(rawValue: 0x20000000)
    public static let newnet = CloneFlags(rawValue: 0x40000000)
    public static let io = CloneFlags(rawValue: 0x80000000)
    public static let newtime = CloneFlags(rawValue: 0x80)
    public static let clearSighand = CloneFlags(rawValue: 0x100000000)
    public static let intoCgroup = CloneFlags(rawValue: 0x200000000)

    /// The low byte of clone(2)'s flags is the exit signal, not a flag.
    public static let exitSignalMask: UInt64 = 0xff

    static let cloneNames = Xlat.cloneFlags
    static let clone3Names = Xlat.cloneFlags + Xlat.clone3OnlyFlags

    /// The flag names, for JSON.
    public var names: [String] {
        Self.clone3Names.filter { rawValue & $0.0 != 0 }.map(\.1)
    }
}

/// What a clone-family call asked for, decoded at syscall entry.
public struct CloneRequest: Sendable, Equatable {
    public enum Call: String, Sendable { case clone, clone3, fork, vfork }
    public let call: Call
    public let flags: CloneFlags
    public let exitSignal: Int32
    public let childTidPointer: UInt64?
    public let parentTidPointer: UInt64?
    public let stack: UInt64
    public let tls: UInt64?
    /// Where CLONE_PIDFD has the kernel store the pidfd (an int) in the parent.
    public let pidfdPointer: UInt64?

    /// Memory shared with the parent: no copy-on-write between them.
    public var sharesMemory: Bool { flags.contains(.vm) }
    public var isThread: Bool { flags.contains(.thread) }

    public init(call: Call, flags: CloneFlags, exitSignal: Int32, childTidPointer: UInt64?,
                parentTidPointer: UInt64?, stack: UInt64, tls: UInt64?, pidfdPointer: UInt64? = nil) {
        self.call = call
        self.pidfdPointer = pidfdPointer
        self.flags = flags
        self.exitSignal = exitSignal
        self.childTidPointer = childTidPointer
        self.parentTidPointer = parentTidPointer
        self.stack = stack
        self.tls = tls
    }

    /// clone(2) on x86-64: flags, stack, parent_tid, child_tid, tls.
    public static func clone(arguments a: [UInt64]) -> CloneRequest {
        let flags = CloneFlags(rawValue: a[0] & ~CloneFlags.exitSignalMask)
        let wantsChildTid = !flags.isDisjoint(with: [.childSettid, .childCleartid])
        return CloneRequest(
            call: .clone, flags: flags, exitSignal: Int32(a[0] & CloneFlags.exitSignalMask),
            childTidPointer: wantsChildTid ? a[3] : nil,
            parentTidPointer: flags.contains(.parentSettid) ? a[2] : nil,
            stack: a[1], tls: flags.contains(.settls) ? a[4] : nil,
            pidfdPointer: flags.contains(.pidfd) ? a[2] : nil)  // clone(2) takes the pidfd's address in parent_tid
    }

    /// clone3(2): decoded from the struct clone_args it points to.
    public static func clone3(_ args: CloneArgs) -> CloneRequest {
        let flags = CloneFlags(rawValue: args.flags)
        let wantsChildTid = !flags.isDisjoint(with: [.childSettid, .childCleartid])
        return CloneRequest(
            call: .clone3, flags: flags, exitSignal: Int32(truncatingIfNeeded: args.exitSignal),
            childTidPointer: wantsChildTid ? args.childTid : nil,
            parentTidPointer: flags.contains(.parentSettid) ? args.parentTid : nil,
            stack: args.stack, tls: flags.contains(.settls) ? args.tls : nil,
            pidfdPointer: flags.contains(.pidfd) ? args.pidfd : nil)
    }

    /// fork(2) is clone(SIGCHLD); vfork(2) is clone(CLONE_VM|CLONE_VFORK|SIGCHLD).
    public static func fork() -> CloneRequest {
        CloneRequest(call: .fork, flags: [], exitSignal: 17, childTidPointer: nil, parentTidPointer: nil, stack: 0, tls: nil)
    }
    public static func vfork() -> CloneRequest {
        CloneRequest(call: .vfork, flags: [.vm, .vfork], exitSignal: 17, childTidPointer: nil, parentTidPointer: nil, stack: 0, tls: nil)
    }

    /// Decodes any clone-family syscall at entry; nil for other syscalls or an unreadable clone3 struct.
    public static func decode(name: String, arguments: [UInt64], memory: TraceeMemory) -> CloneRequest? {
        switch name {
        case "clone": return clone(arguments: arguments)
        case "clone3": return CloneArgs.read(arguments[0], size: arguments[1], memory).map(clone3)
        case "fork": return fork()
        case "vfork": return vfork()
        default: return nil
        }
    }
}

/// struct clone_args (linux/sched.h), up to and including `cgroup` (88 bytes).
public struct CloneArgs: Sendable, Equatable {
    public var flags: UInt64 = 0, pidfd: UInt64 = 0, childTid: UInt64 = 0, parentTid: UInt64 = 0
    public var exitSignal: UInt64 = 0, stack: UInt64 = 0, stackSize: UInt64 = 0, tls: UInt64 = 0
    public var setTid: UInt64 = 0, setTidSize: UInt64 = 0, cgroup: UInt64 = 0
    /// How many bytes were present (the caller's size, capped at 88).
    public var fetched: Int = 0

    public static let fullSize = 88
    /// CLONE_ARGS_SIZE_VER0: up to and including `tls`.
    public static let minimumSize = 64

    /// Pure decoding of the struct's bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= Self.minimumSize else { return nil }
        var words = [UInt64](repeating: 0, count: 11)
        bytes.withUnsafeBytes { raw in
            for i in 0..<min(11, bytes.count / 8) { words[i] = raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
        }
        (flags, pidfd, childTid, parentTid) = (words[0], words[1], words[2], words[3])
        (exitSignal, stack, stackSize, tls) = (words[4], words[5], words[6], words[7])
        (setTid, setTidSize, cgroup) = (words[8], words[9], words[10])
        fetched = min(bytes.count, Self.fullSize)
    }

    static func read(_ address: UInt64, size: UInt64, _ memory: TraceeMemory) -> CloneArgs? {
        let want = Int(min(size, UInt64(fullSize)))
        guard want >= minimumSize, let bytes = memory.read(address, count: want), bytes.count == want else { return nil }
        return CloneArgs(bytes: bytes)
    }
}
