import Glibc

/// A buffered writer on a file descriptor (stderr, stdout or a -o/--json file).
public final class OutputSink {
    private let fd: Int32
    private let ownsDescriptor: Bool
    private var buffer: [UInt8] = []
    /// Flush after each line (a terminal, so the user sees progress as it happens).
    private let lineBuffered: Bool

    public init(fd: Int32, owns: Bool = false) {
        self.fd = fd
        self.ownsDescriptor = owns
        self.lineBuffered = isatty(fd) != 0
        buffer.reserveCapacity(1 << 16)
    }

    /// "-" is stdout; anything else is created or truncated.
    public static func open(path: String) throws -> OutputSink {
        if path == "-" { return OutputSink(fd: STDOUT_FILENO) }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CowtraceError("cannot open \(path): \(ErrnoNames.message(errno))")
        }
        return OutputSink(fd: fd, owns: true)
    }

    deinit {
        flush()
        if ownsDescriptor { close(fd) }
    }

    public func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 15 || (lineBuffered && text.utf8.last == 10) { flush() }
    }

    public func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 15 || (lineBuffered && bytes.last == 10) { flush() }
    }

    public func flush() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
