import Glibc

/// Reads a traced process's memory through /proc/PID/mem.
///
/// Never process_vm_readv: it pins the pages it reads, and pinning a page still shared
/// copy-on-write makes the kernel copy it. pread on /proc/PID/mem does not. Nothing here
/// writes: a write would itself copy the page.
public final class TraceeMemory {
    public let pid: pid_t
    private var descriptor: OwnedFileDescriptor?

    public init(pid: pid_t) { self.pid = pid }

    /// After exec the old file refers to the old address space.
    public func invalidate() { descriptor = nil }

    var isOpen: Bool { descriptor != nil }

    private func fd() -> OwnedFileDescriptor? {
        if descriptor == nil {
            descriptor = try? OwnedFileDescriptor.open("/proc/\(pid)/mem", flags: O_RDONLY, pid: pid)
        }
        return descriptor
    }

    /// Up to `count` bytes at `address`; fewer where the mapping ends; nil if nothing is readable.
    public func read(_ address: UInt64, count: Int) -> [UInt8]? {
        guard count > 0, let fd = fd() else { return count == 0 ? [] : nil }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { buf -> Int in
            var done = 0
            while done < count {
                let r = Glibc.pread(fd.raw, buf.baseAddress! + done, count - done, off_t(Int64(bitPattern: address &+ UInt64(done))))
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { break }
                done += r
            }
            return done
        }
        if n == 0 { return nil }
        bytes.removeLast(count - n)
        return bytes
    }

    public func readUInt64(_ address: UInt64) -> UInt64? {
        guard let b = read(address, count: 8), b.count == 8 else { return nil }
        return b.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    public func readInt32(_ address: UInt64) -> Int32? {
        guard let b = read(address, count: 4), b.count == 4 else { return nil }
        return b.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
    }

    /// A NUL-terminated string of at most `limit` bytes; `terminated` is false when cut short.
    public func readCString(_ address: UInt64, limit: Int) -> (bytes: [UInt8], terminated: Bool)? {
        var result: [UInt8] = []
        var cursor = address
        while result.count < limit {
            // Stay within one page per read so an unmapped next page does not fail the read.
            let pageLeft = Int(4096 - (cursor & 4095))
            let want = min(pageLeft, limit - result.count)
            guard let chunk = read(cursor, count: want), !chunk.isEmpty else {
                return result.isEmpty && cursor == address ? nil : (result, false)
            }
            if let nul = chunk.firstIndex(of: 0) {
                result.append(contentsOf: chunk[..<nul])
                return (result, true)
            }
            result.append(contentsOf: chunk)
            cursor &+= UInt64(chunk.count)
        }
        return (result, false)
    }
}
