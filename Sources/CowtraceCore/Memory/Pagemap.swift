import Glibc

/// One 64-bit /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
public struct PagemapEntry: Sendable, Equatable {
    public let raw: UInt64
    public init(raw: UInt64) { self.raw = raw }

    /// Bits 0-54: the page frame number (0 when hidden from an unprivileged reader).
    public var frame: UInt64 { raw & ((1 << 55) - 1) }
    public var softDirty: Bool { raw & (1 << 55) != 0 }
    /// Bit 56: mapped by this process only.
    public var exclusive: Bool { raw & (1 << 56) != 0 }
    /// Bit 61: file page or shared anonymous page (not yet copied for a private file mapping).
    public var fileOrShared: Bool { raw & (1 << 61) != 0 }
    public var swapped: Bool { raw & (1 << 62) != 0 }
    public var present: Bool { raw & (1 << 63) != 0 }
}

/// Reads /proc/PID/pagemap: one pread per contiguous range of pages.
public final class Pagemap {
    public static let pageSize: UInt64 = 4096
    public let pid: pid_t
    private let fd: OwnedFileDescriptor
    private var buffer: [UInt64] = []

    public init(pid: pid_t) throws {
        self.pid = pid
        fd = try OwnedFileDescriptor.open("/proc/\(pid)/pagemap", flags: O_RDONLY, pid: pid)
    }

    /// Entries for `count` pages from `page` (page-aligned address).
    public func entries(from page: UInt64, count: Int) throws -> [PagemapEntry] {
        if buffer.count < count { buffer = [UInt64](repeating: 0, count: count) }
        let read = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(SystemCallError) -> Int in
                try fd.pread(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<count * 8]),
                             offset: (page / Self.pageSize) * 8, what: "pread(/proc/\(pid)/pagemap)", pid: pid)
            }
        }.get()
        return (0..<(read / 8)).map { PagemapEntry(raw: buffer[$0]) }
    }

    public func entry(_ page: UInt64) throws -> PagemapEntry {
        try entries(from: page, count: 1).first ?? PagemapEntry(raw: 0)
    }
}

/// Frame numbers as the tracker keeps them: real ones, or (without CAP_SYS_ADMIN, when
/// pagemap reads 0) stand-in tokens above the 55 bits a real frame number can use.
public enum FrameNumber {
    public static let firstToken: UInt64 = 1 << 56

    /// The real frame, or nil for 0 and for a stand-in token.
    public static func known(_ frame: UInt64) -> UInt64? { frame == 0 || frame >= (1 << 55) ? nil : frame }

    /// Whether pagemap shows us real frame numbers (it shows 0 without CAP_SYS_ADMIN):
    /// probed on a page of our own stack.
    public static let visible: Bool = {
        var probe: UInt64 = 1
        return withUnsafeMutablePointer(to: &probe) { pointer in
            pointer.pointee &+= 1  // present and written
            guard let pagemap = try? Pagemap(pid: getpid()),
                  let entry = try? pagemap.entry(UInt64(UInt(bitPattern: pointer)) & ~4095) else { return false }
            return entry.present && entry.frame != 0
        }
    }()
}

/// The kernel's shared zero page: read-faulted anonymous memory maps it, in every process.
public enum ZeroPage {
    /// Its frame, found by read-faulting a fresh anonymous page of our own; nil when frames
    /// are hidden (no CAP_SYS_ADMIN).
    public static let frame: UInt64? = {
        guard let p = mmap(nil, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else { return nil }
        defer { munmap(p, 4096) }
        let byte = p.load(as: UInt8.self)
        precondition(byte == 0)
        guard let pagemap = try? Pagemap(pid: getpid()),
              let entry = try? pagemap.entry(UInt64(UInt(bitPattern: p))), entry.present, entry.frame != 0 else { return nil }
        return entry.frame
    }()
}
