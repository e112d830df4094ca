import CCowtrace
import Glibc

/// The {si_signo=…, si_code=…, …} part of strace's "--- SIGCHLD … ---" lines.
enum SignalInfoFormat {
    static func describe(_ info: siginfo_t, signal: Int32) -> String {
        var info = info
        let code = cow_siginfo_code(&info)
        var fields = ["si_signo=\(SignalNames.name(signal))", "si_code=\(codeName(code, signal: signal))"]
        switch signal {
        case SIGCHLD where code > 0:
            fields += ["si_pid=\(cow_siginfo_pid(&info))", "si_uid=\(cow_siginfo_uid(&info))"]
            let status = cow_siginfo_status(&info)
            fields.append("si_status=" + (code == 1 ? "\(status)" : SignalNames.name(status)))
            fields += ["si_utime=\(cow_siginfo_utime(&info))", "si_stime=\(cow_siginfo_stime(&info))"]
        case SIGSEGV where code > 0, SIGBUS where code > 0, SIGILL where code > 0, SIGFPE where code > 0, SIGTRAP where code > 0:
            fields.append("si_addr=" + StraceFormat.address(UInt64(cow_siginfo_addr(&info))))
        default:
            if code <= 0 {
                fields += ["si_pid=\(cow_siginfo_pid(&info))", "si_uid=\(cow_siginfo_uid(&info))"]
            }
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// The signal's own code name first (TRAP_BRKPT is 1, as is SEGV_MAPERR), then the
    /// codes any signal can have.
    static func codeName(_ code: Int32, signal: Int32) -> String {
        if code > 0 && code != 0x80, let own = Xlat.siCodes.first(where: { $0.signal == signal && $0.code == code }) {
            return own.name
        }
        return Xlat.siCodes.first { $0.signal == nil && $0.code == code }?.name ?? "\(code)"
    }
}
