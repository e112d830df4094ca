import Glibc

/// An owned file descriptor, closed when the owner is done with it.
final class OwnedFileDescriptor {
    let raw: Int32
    init(raw: Int32) { self.raw = raw }
    deinit { close(raw) }

    static func open(_ path: String, flags: Int32, pid: pid_t? = nil) throws(CowtraceError) -> OwnedFileDescriptor {
        let fd = try systemCall("open(\(path))", pid: pid) { Glibc.open(path, flags | O_CLOEXEC) }
        return OwnedFileDescriptor(raw: fd)
    }

    /// pread until `count` bytes or end of file; short reads are normal for /proc files.
    func pread(into buffer: UnsafeMutableRawBufferPointer, offset: UInt64, what: @autoclosure () -> String, pid: pid_t? = nil) throws(CowtraceError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try systemCall(what(), pid: pid) {
                Glibc.pread(raw, buffer.baseAddress! + done, buffer.count - done, off_t(Int64(bitPattern: offset &+ UInt64(done))))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Everything from offset 0 to the end (a /proc seq file starts over at offset 0).
    func readAll(what: String, pid: pid_t? = nil) throws(CowtraceError) -> [UInt8] {
        var bytes: [UInt8] = []
        // Not zeroed, and small: most are /proc files of a line or a page, read at every fork.
        try withUnsafeTemporaryAllocation(byteCount: 16384, alignment: 8) { (chunk: UnsafeMutableRawBufferPointer) throws(CowtraceError) in
            while true {
                let n = try pread(into: chunk, offset: UInt64(bytes.count), what: "pread(\(what))", pid: pid)
                bytes.append(contentsOf: chunk[0..<n])
                if n < chunk.count { break }
            }
        }
        return bytes
    }
}

/// Reads a whole (small, /proc) file. /proc files report size 0, so read until EOF.
func readWholeFile(_ path: String, pid: pid_t? = nil) throws(CowtraceError) -> [UInt8] {
    try OwnedFileDescriptor.open(path, flags: O_RDONLY, pid: pid).readAll(what: path, pid: pid)
}
