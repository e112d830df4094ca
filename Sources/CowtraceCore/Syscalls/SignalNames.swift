import Glibc

/// Signal names as strace prints them.
public enum SignalNames {
    /// Indexed by signal number (0 is "0"), from Tables/xlat/signals.in.
    static let names: [String] = ["0"] + Xlat.signalNames.map(\.1)

    public static func name(_ signal: Int32) -> String {
        if signal >= 0 && Int(signal) < names.count { return names[Int(signal)] }
        if signal == 32 { return "SIGRTMIN" }
        if signal > 32 && signal <= 64 { return "SIGRT_\(signal - 32)" }
        return "\(signal)"
    }

    public static func number(_ name: String) -> Int32? {
        let upper = name.uppercased()
        let full = upper.hasPrefix("SIG") ? upper : "SIG" + upper
        return names.firstIndex(of: full).map { Int32($0) }
    }

    /// Signals that stop a process (a stop with one of these may be a group-stop).
    static func isStopSignal(_ signal: Int32) -> Bool {
        signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU
    }
}
