import Glibc

/// The report files of a run (`--speedscope`, `--folded`, `--html`): opened before tracing
/// starts, so a path that cannot be written fails at once, and written from the run model at
/// the end. Every failure is one line naming the file.
public final class ReportFiles {
    public enum Format: String, Sendable { case speedscope, folded, html }

    private var files: [(format: Format, path: String, fd: Int32)] = []

    public init(speedscope: String?, folded: String?, html: String?) throws {
        for (format, path) in [(Format.speedscope, speedscope), (.folded, folded), (.html, html)] {
            guard let path else { continue }
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                let error = errno
                closeAll()
                throw CowtraceError("cannot open --\(format.rawValue) file \(path): \(ErrnoNames.message(error))")
            }
            files.append((format, path, fd))
        }
    }

    deinit { closeAll() }

    public var isEmpty: Bool { files.isEmpty }

    private func closeAll() {
        for file in files { close(file.fd) }
        files.removeAll()
    }

    /// Renders and writes each file; returns the paths written.
    @discardableResult
    public func write(_ log: RunLog, title: String) throws -> [String] {
        defer { closeAll() }
        var written: [String] = []
        for file in files {
            let text: String
            switch file.format {
            case .speedscope: text = SpeedscopeProfile.render(log, name: title)
            case .folded: text = FoldedStacks.render(log)
            case .html: text = HTMLReport.render(log, title: title)
            }
            try Self.write(text, to: file.fd, path: file.path, what: "--\(file.format.rawValue)")
            written.append(file.path)
        }
        return written
    }

    /// Writes all of `text` (short writes continued), then closes; a failure names the file.
    public static func write(_ text: String, to fd: Int32, path: String, what: String) throws {
        var bytes = Array(text.utf8)
        var offset = 0
        do {
            while offset < bytes.count {
                let n = try bytes.withUnsafeMutableBytes { buffer throws(CowtraceError) in
                    try systemCall("write") { Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
                }
                offset += n
            }
        } catch let error as CowtraceError {
            throw CowtraceError("cannot write \(what) file \(path): \(ErrnoNames.message(error.errno))")
        } catch {
            throw error
        }
        bytes.removeAll()
    }

    /// Creates `path` and writes `text` to it.
    public static func write(_ text: String, path: String, what: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CowtraceError("cannot open \(what) file \(path): \(ErrnoNames.message(errno))") }
        defer { close(fd) }
        try write(text, to: fd, path: path, what: what)
    }
}
