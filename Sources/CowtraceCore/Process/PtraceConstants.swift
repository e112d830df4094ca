/// ptrace requests used by cowtrace (values from <sys/ptrace.h>, x86-64).
public enum PtraceRequest: Int32, Sendable {
    case peekData = 2            // PTRACE_PEEKDATA
    case cont = 7                // PTRACE_CONT
    case kill = 8                // PTRACE_KILL
    case singleStep = 9          // PTRACE_SINGLESTEP
    case getRegs = 12            // PTRACE_GETREGS
    case setRegs = 13            // PTRACE_SETREGS
    case detach = 17             // PTRACE_DETACH
    case syscall = 24            // PTRACE_SYSCALL
    case setOptions = 0x4200     // PTRACE_SETOPTIONS
    case getEventMessage = 0x4201 // PTRACE_GETEVENTMSG
    case getSiginfo = 0x4202     // PTRACE_GETSIGINFO
    case seize = 0x4206          // PTRACE_SEIZE
    case interrupt = 0x4207      // PTRACE_INTERRUPT
    case listen = 0x4208         // PTRACE_LISTEN
    case getSigmask = 0x420a     // PTRACE_GETSIGMASK
    case setSigmask = 0x420b     // PTRACE_SETSIGMASK

    var name: String {
        switch self {
        case .peekData: "PTRACE_PEEKDATA"
        case .cont: "PTRACE_CONT"
        case .kill: "PTRACE_KILL"
        case .singleStep: "PTRACE_SINGLESTEP"
        case .getRegs: "PTRACE_GETREGS"
        case .setRegs: "PTRACE_SETREGS"
        case .detach: "PTRACE_DETACH"
        case .syscall: "PTRACE_SYSCALL"
        case .setOptions: "PTRACE_SETOPTIONS"
        case .getEventMessage: "PTRACE_GETEVENTMSG"
        case .getSiginfo: "PTRACE_GETSIGINFO"
        case .seize: "PTRACE_SEIZE"
        case .interrupt: "PTRACE_INTERRUPT"
        case .listen: "PTRACE_LISTEN"
        case .getSigmask: "PTRACE_GETSIGMASK"
        case .setSigmask: "PTRACE_SETSIGMASK"
        }
    }
}

/// PTRACE_O_* options.
public struct PtraceOptions: OptionSet, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    public static let traceSysGood = PtraceOptions(rawValue: 0x1)   // PTRACE_O_TRACESYSGOOD
    public static let traceFork = PtraceOptions(rawValue: 0x2)      // PTRACE_O_TRACEFORK
    public static let traceVfork = PtraceOptions(rawValue: 0x4)     // PTRACE_O_TRACEVFORK
    public static let traceClone = PtraceOptions(rawValue: 0x8)     // PTRACE_O_TRACECLONE
    public static let traceExec = PtraceOptions(rawValue: 0x10)     // PTRACE_O_TRACEEXEC
    public static let traceVforkDone = PtraceOptions(rawValue: 0x20) // PTRACE_O_TRACEVFORKDONE
    public static let traceExit = PtraceOptions(rawValue: 0x40)     // PTRACE_O_TRACEEXIT
    public static let traceSeccomp = PtraceOptions(rawValue: 0x80)  // PTRACE_O_TRACESECCOMP
    public static let exitKill = PtraceOptions(rawValue: 0x100000)  // PTRACE_O_EXITKILL

    /// What cowtrace always asks for: follow every new process and thread, see execs and exits.
    public static let following: PtraceOptions = [.traceSysGood, .traceFork, .traceVfork, .traceClone, .traceExec, .traceExit]
}

/// PTRACE_EVENT_* values, found in the wait status above the stop signal.
public enum PtraceEvent: Int32, Sendable {
    case fork = 1        // PTRACE_EVENT_FORK
    case vfork = 2       // PTRACE_EVENT_VFORK
    case clone = 3       // PTRACE_EVENT_CLONE
    case exec = 4        // PTRACE_EVENT_EXEC
    case vforkDone = 5   // PTRACE_EVENT_VFORK_DONE
    case exit = 6        // PTRACE_EVENT_EXIT
    case seccomp = 7     // PTRACE_EVENT_SECCOMP
    case stop = 128      // PTRACE_EVENT_STOP
}
