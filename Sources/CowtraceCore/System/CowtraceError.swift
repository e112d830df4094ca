import Glibc

/// The core's one error: a failed system call (which call, on which process, the errno it
/// returned) or a failure said in words (a bad input, a malformed line). Either way it is
/// printed as one line, "cowtrace: <description>".
public struct CowtraceError: Error, CustomStringConvertible, Equatable {
    public let message: String
    /// The system call that failed, and on which process; nil for other failures.
    public let call: String?
    public let pid: pid_t?
    /// Its errno; 0 for failures that are not a system call's.
    public let errno: Int32

    public init(_ message: String) {
        self.message = message
        call = nil
        pid = nil
        errno = 0
    }

    public init(call: String, pid: pid_t? = nil, errno: Int32) {
        let target = pid.map { " on pid \($0)" } ?? ""
        message = "\(call)\(target): \(ErrnoNames.message(errno)) (\(ErrnoNames.name(errno)))"
        self.call = call
        self.pid = pid
        self.errno = errno
    }

    public var description: String { message }
}
