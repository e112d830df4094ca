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

    static func codeName(_ code: Int32, signal: Int32) -> String {
        switch code {
        case 0: return "SI_USER"
        case 0x80: return "SI_KERNEL"
        case -1: return "SI_QUEUE"
        case -2: return "SI_TIMER"
        case -3: return "SI_MESGQ"
        case -4: return "SI_ASYNCIO"
        case -6: return "SI_TKILL"
        default: break
        }
        let table: [String]
        switch signal {
        case SIGCHLD: table = ["CLD_EXITED", "CLD_KILLED", "CLD_DUMPED", "CLD_TRAPPED", "CLD_STOPPED", "CLD_CONTINUED"]
        case SIGSEGV: table = ["SEGV_MAPERR", "SEGV_ACCERR", "SEGV_BNDERR", "SEGV_PKUERR"]
        case SIGBUS: table = ["BUS_ADRALN", "BUS_ADRERR", "BUS_OBJERR"]
        case SIGTRAP: table = ["TRAP_BRKPT", "TRAP_TRACE", "TRAP_BRANCH", "TRAP_HWBKPT", "TRAP_UNK", "TRAP_PERF"]
        case SIGILL: table = ["ILL_ILLOPC", "ILL_ILLOPN", "ILL_ILLADR", "ILL_ILLTRP", "ILL_PRVOPC", "ILL_PRVREG", "ILL_COPROC", "ILL_BADSTK"]
        case SIGFPE: table = ["FPE_INTDIV", "FPE_INTOVF", "FPE_FLTDIV", "FPE_FLTOVF", "FPE_FLTUND", "FPE_FLTRES", "FPE_FLTINV", "FPE_FLTSUB"]
        default: table = []
        }
        return code >= 1 && Int(code) <= table.count ? table[Int(code) - 1] : "\(code)"
    }
}
