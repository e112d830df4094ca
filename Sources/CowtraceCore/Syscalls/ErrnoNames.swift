import Glibc

/// errno names (generated from Tables/errno.in) and their messages.
public enum ErrnoNames {
    public static func name(_ errno: Int32) -> String { table[errno] ?? "E???" }

    /// The message strace prints after the name: strerror's, or the kernel-internal
    /// restart codes' meaning.
    public static func message(_ errno: Int32) -> String {
        switch errno {
        case 512: return "To be restarted if SA_RESTART is set"
        case 513: return "To be restarted"
        case 514: return "To be restarted if no handler"
        case 515: return "ioctl not supported"
        case 516: return "Interrupted by signal"
        default: return String(cString: strerror(errno))
        }
    }

    /// The restart codes never reach the program; strace shows them with a "?" result.
    static func isRestart(_ errno: Int32) -> Bool { (512...516).contains(errno) && errno != 515 }
}
