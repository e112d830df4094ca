import Glibc

/// A failed system call: which call, on which process, and the errno it returned.
public struct SystemCallError: Error, CustomStringConvertible, Equatable {
    public let call: String
    public let pid: pid_t?
    public let errno: Int32

    public init(call: String, pid: pid_t? = nil, errno: Int32) {
        self.call = call
        self.pid = pid
        self.errno = errno
    }

    public var description: String {
        let target = pid.map { " on pid \($0)" } ?? ""
        return "\(call)\(target): \(ErrnoNames.message(errno)) (\(ErrnoNames.name(errno)))"
    }
}

/// User-facing failures: one clear line, printed as "cowtrace: <message>".
public struct CowtraceError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
