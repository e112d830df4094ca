import Glibc

/// A buffered writer on a file descriptor (stderr, stdout or a -o/--json file). A write
/// error is kept (the first one) and said at the end, never lost in silence; once one
/// happens nothing more is written there.
public final class OutputSink {
    let fd: Int32
    private let ownsDescriptor: Bool
    /// How the output is named in an error ("/dev/full", "stdout").
    public let name: String
    private var buffer: [UInt8] = []
    /// Written out in writes of about this size (a terminal line by line); whatever is
    /// buffered goes at every flush (the periodic tick, the end, a signal that ends the run).
    static let flushSize = 1 << 18
    /// Flush after each line (a terminal, so the user sees progress as it happens).
    private let lineBuffered: Bool
    /// The errno of the first failed write.
    public private(set) var writeError: Int32?
    /// Full buffers of a pipe or socket are written on a thread of its own (`BufferWriter`),
    /// started with the first full buffer, never before: a run that writes little needs none,
    /// and a program launched before it exists inherits cowtrace's signal state untouched
    /// (glibc installs a handler for its internal SIGSETXID at the first pthread_create, and
    /// exec would reset that signal to default where it had been inherited ignored).
    private var writer: BufferWriter?
    private var triedWriter = false
    /// Whether full buffers may go to a writing thread (`writesOnThread`).
    private let mayThread: Bool
    /// Whether full buffers go to the writing thread (the tests' proof that it was used).
    var threaded: Bool { writer != nil }

    /// `onThread` overrides `writesOnThread(fd)` (the tests' way to a thread on a file).
    public init(fd: Int32, owns: Bool = false, name: String? = nil, onThread: Bool? = nil) {
        self.fd = fd
        self.ownsDescriptor = owns
        self.name = name ?? (fd == STDOUT_FILENO ? "stdout" : fd == STDERR_FILENO ? "stderr" : "descriptor \(fd)")
        self.lineBuffered = isatty(fd) != 0
        self.mayThread = onThread ?? Self.writesOnThread(fd)
        buffer.reserveCapacity(Self.flushSize + (1 << 14))
    }

    /// Only a pipe or socket gets a writing thread: its reader sets the pace, and the tracer
    /// must not wait for it at every buffer. A file (or a device) takes a 256 KiB write in a
    /// page-cache copy, which is what its bytes cost anyway; a second thread would cost the
    /// tracer more, on every system call and allocation of the whole run: the kernel's
    /// descriptor lookups take references once the descriptor table is shared, glibc's
    /// cancellable calls (wait4, pread) and malloc take their multi-thread paths (scale.sh 4,
    /// 262,144 splits: the tracing thread's CPU best of 7, 7.62 s with the thread, 7.02 s in
    /// line, 7.07 s --summary-only; the writes in line take 0.03-0.16 s of it).
    static func writesOnThread(_ fd: Int32) -> Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        let type = st.st_mode & S_IFMT
        return type == S_IFIFO || type == S_IFSOCK
    }

    /// "-" is stdout; anything else is created or truncated. A file gets a descriptor above
    /// the standard three, so that with stdout (or stderr) closed it can never be taken for
    /// them: JSON meant for stdout must not land in the -o file.
    public static func open(path: String) throws -> OutputSink {
        if path == "-" {
            guard fcntl(STDOUT_FILENO, F_GETFD) != -1 else {
                throw CowtraceError("cannot write to stdout ('-'): it is closed (\(ErrnoNames.message(EBADF)))")
            }
            return OutputSink(fd: STDOUT_FILENO, name: "stdout")
        }
        let opened = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard opened >= 0 else {
            throw CowtraceError("cannot open \(path): \(ErrnoNames.message(errno))")
        }
        var fd = opened
        if opened <= STDERR_FILENO {
            fd = fcntl(opened, F_DUPFD_CLOEXEC, 3)
            let err = errno
            close(opened)
            guard fd >= 0 else { throw CowtraceError("cannot open \(path): \(ErrnoNames.message(err))") }
        }
        return OutputSink(fd: fd, owns: true, name: path)
    }

    deinit {
        flush()
        writer?.stop()
        if ownsDescriptor { close(fd) }
    }

    public func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        appended(endingLine: text.utf8.last == 10)
    }

    /// Appends what `build` writes straight into the buffer (no intermediate copy).
    public func append(_ build: (inout [UInt8]) -> Void) {
        build(&buffer)
        appended(endingLine: buffer.last == 10)
    }

    /// The same, with `value` handed to `build` rather than captured: a closure capturing a
    /// split copies it (a retain and release of each of its strings and arrays, per line).
    public func append<Value>(_ value: Value, _ build: (Value, inout [UInt8]) -> Void) {
        build(value, &buffer)
        appended(endingLine: buffer.last == 10)
    }

    public func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        appended(endingLine: bytes.last == 10)
    }

    /// After each append: a full buffer goes out, and a terminal gets each line as it ends.
    private func appended(endingLine: Bool) {
        if buffer.count >= Self.flushSize { handOver() } else if lineBuffered && endingLine { flush() }
    }

    /// A full buffer: to the writing thread (a pipe or socket), else written here.
    private func handOver() {
        if writer == nil && !triedWriter && mayThread && !lineBuffered && writeError == nil {
            triedWriter = true
            writer = BufferWriter.start(fd: fd)
        }
        if let writer { writer.hand(&buffer) } else { flush() }
    }

    /// Everything buffered or handed over is written when this returns (the periodic tick,
    /// the end, a signal that ends the run, a break's prompt).
    public func flush() {
        if let writer {
            if !buffer.isEmpty { writer.hand(&buffer) }
            if writeError == nil { writeError = writer.drain() }
            return
        }
        defer { buffer.removeAll(keepingCapacity: true) }
        guard writeError == nil else { return }
        writeError = BufferWriter.writeAll(fd, buffer)
    }

    /// "write to NAME: message (ENAME)" once a write has failed, else nil.
    public var failure: String? {
        flush()
        return writeError.map { "write to \(name) failed: \(ErrnoNames.message($0)) (\(ErrnoNames.name($0)))" }
    }
}
