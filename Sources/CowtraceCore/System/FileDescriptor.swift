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
}

/// Reads a whole (small, /proc) file. /proc files report size 0, so read until EOF.
func readWholeFile(_ path: String, pid: pid_t? = nil) throws(CowtraceError) -> [UInt8] {
    let fd = try OwnedFileDescriptor.open(path, flags: O_RDONLY, pid: pid)
    var bytes: [UInt8] = []
    // Not zeroed, and small: most are /proc files of a line or a page, read at every fork.
    try withUnsafeTemporaryAllocation(byteCount: 16384, alignment: 8) { (chunk: UnsafeMutableRawBufferPointer) throws(CowtraceError) in
        while true {
            let n = try systemCall("read(\(path))", pid: pid) { Glibc.read(fd.raw, chunk.baseAddress, chunk.count) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }
    return bytes
}
