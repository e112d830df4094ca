import CCowtrace
import Glibc

/// Typed ptrace calls. Each throws a CowtraceError naming the request, the pid and the errno.
/// ptrace is per thread: every call must come from the thread that attached the tracee.
public enum Ptrace {
    @discardableResult
    static func call(_ request: PtraceRequest, _ tid: pid_t, addr: UInt = 0, data: UInt = 0) throws(CowtraceError) -> Int {
        try systemCall("ptrace(\(request.name))", pid: tid) {
            cow_ptrace(request.rawValue, tid, addr, data)
        }
    }

    static func resume(_ tid: pid_t, _ request: PtraceRequest, signal: Int32 = 0) throws(CowtraceError) {
        try call(request, tid, data: UInt(signal))
    }

    static func setOptions(_ tid: pid_t, _ options: PtraceOptions) throws(CowtraceError) {
        try call(.setOptions, tid, data: options.rawValue)
    }

    static func seize(_ tid: pid_t, _ options: PtraceOptions) throws(CowtraceError) {
        try call(.seize, tid, data: options.rawValue)
    }

    static func interrupt(_ tid: pid_t) throws(CowtraceError) { try call(.interrupt, tid) }
    static func listen(_ tid: pid_t) throws(CowtraceError) { try call(.listen, tid) }
    static func detach(_ tid: pid_t, signal: Int32 = 0) throws(CowtraceError) { try call(.detach, tid, data: UInt(signal)) }

    /// The thread's blocked signal mask (bit N-1 for signal N).
    static func signalMask(_ tid: pid_t) throws(CowtraceError) -> UInt64 {
        var mask: UInt64 = 0
        try withUnsafeMutablePointer(to: &mask) { (p) throws(CowtraceError) -> Void in
            try call(.getSigmask, tid, addr: 8, data: UInt(bitPattern: p))
        }
        return mask
    }

    static func setSignalMask(_ tid: pid_t, _ mask: UInt64) throws(CowtraceError) {
        var mask = mask
        try withUnsafeMutablePointer(to: &mask) { (p) throws(CowtraceError) -> Void in
            try call(.setSigmask, tid, addr: 8, data: UInt(bitPattern: p))
        }
    }

    static func eventMessage(_ tid: pid_t) throws(CowtraceError) -> UInt {
        var message: UInt = 0
        try withUnsafeMutablePointer(to: &message) { (p) throws(CowtraceError) -> Void in
            try call(.getEventMessage, tid, data: UInt(bitPattern: p))
        }
        return message
    }

    public static func registers(_ tid: pid_t) throws(CowtraceError) -> user_regs_struct {
        var regs = user_regs_struct()
        try systemCall("ptrace(PTRACE_GETREGS)", pid: tid) { cow_ptrace_getregs(tid, &regs) }
        return regs
    }

    /// Registers only (never tracee memory): used to take back a trap flag of ours.
    static func setRegisters(_ tid: pid_t, _ regs: user_regs_struct) throws(CowtraceError) {
        var regs = regs
        try withUnsafeMutablePointer(to: &regs) { (p) throws(CowtraceError) -> Void in
            try call(.setRegs, tid, data: UInt(bitPattern: p))
        }
    }

    static func signalInfo(_ tid: pid_t) throws(CowtraceError) -> siginfo_t {
        var info = siginfo_t()
        try systemCall("ptrace(PTRACE_GETSIGINFO)", pid: tid) { cow_ptrace_getsiginfo(tid, &info) }
        return info
    }

    /// The signal's number, si_code, si_addr and perf cookie.
    static func signalDetails(_ tid: pid_t) throws(CowtraceError) -> SignalDetails {
        var info = try signalInfo(tid)
        return SignalDetails(signal: info.si_signo, code: cow_siginfo_code(&info), address: UInt64(cow_siginfo_addr(&info)),
                             perfData: cow_siginfo_perf_data(&info), perfFlags: cow_siginfo_perf_flags(&info))
    }

    static func syscallInfo(_ tid: pid_t) throws(CowtraceError) -> cow_syscall_info {
        var info = cow_syscall_info()
        try systemCall("ptrace(PTRACE_GET_SYSCALL_INFO)", pid: tid) { cow_ptrace_syscall_info(tid, &info) }
        return info
    }

    static func rseqConfiguration(_ tid: pid_t) throws(CowtraceError) -> cow_rseq_configuration {
        var config = cow_rseq_configuration()
        try systemCall("ptrace(PTRACE_GET_RSEQ_CONFIGURATION)", pid: tid) { cow_ptrace_rseq_configuration(tid, &config) }
        return config
    }

    /// One word of tracee memory through PTRACE_PEEKDATA (does not copy shared pages).
    static func peek(_ tid: pid_t, _ address: UInt64) throws(CowtraceError) -> UInt64 {
        var word: UInt64 = 0
        try systemCall("ptrace(PTRACE_PEEKDATA)", pid: tid) { cow_ptrace_peek(tid, UInt(address), &word) }
        return word
    }
}
