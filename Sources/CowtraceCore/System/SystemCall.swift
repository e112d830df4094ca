import Glibc

/// The one place system calls are made from Swift: retries EINTR (unless told not to) and
/// throws an error naming the call, the pid and the errno. The corresponding C idiom is
/// `do { r = call(); } while (r == -1 && errno == EINTR)`.
@discardableResult
@inline(__always)
func systemCall<Result: BinaryInteger>(
    _ call: @autoclosure () -> String,
    pid: pid_t? = nil,
    retryOnInterrupt: Bool = true,
    _ body: () -> Result
) throws(CowtraceError) -> Result {
    while true {
        let result = body()
        if result != -1 { return result }
        let err = Glibc.errno
        if err == EINTR && retryOnInterrupt { continue }
        throw CowtraceError(call: call(), pid: pid, errno: err)
    }
}
