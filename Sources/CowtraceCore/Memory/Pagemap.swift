import CCowtrace
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

/// Reads /proc/PID/pagemap in bounded chunks; finds present pages with PAGEMAP_SCAN where
/// the kernel has it (6.7+), so what it costs follows the pages present, not the size mapped.
public final class Pagemap {
    public static let pageSize: UInt64 = 4096
    /// The most entries read (and held) at once: 512 KiB.
    public static let chunkPages = 65536
    public let pid: pid_t
    private let fd: OwnedFileDescriptor
    private var buffer: [UInt64] = []
    /// Whether this kernel answers PAGEMAP_SCAN (learnt at the first refusal).
    nonisolated(unsafe) private static var scanWorks = true
    private var regions = [cow_page_region](repeating: cow_page_region(), count: 256)

    public init(pid: pid_t) throws {
        self.pid = pid
        fd = try OwnedFileDescriptor.open("/proc/\(pid)/pagemap", flags: O_RDONLY, pid: pid)
    }

    /// Entries for `count` pages from `page` (page-aligned address), at most `chunkPages`
    /// per pread.
    public func entries(from page: UInt64, count: Int) throws -> [PagemapEntry] {
        var result: [PagemapEntry] = []
        result.reserveCapacity(count)
        try forEachChunk(from: page, count: count) { _, chunk in result.append(contentsOf: chunk) }
        return result
    }

    /// Reads `count` entries from `page` in chunks; `body` gets each chunk's first page and
    /// entries (the buffer is reused: copy what is kept). Stops early at a short read.
    public func forEachChunk(from page: UInt64, count: Int, _ body: (UInt64, UnsafeBufferPointer<PagemapEntry>) throws -> Void) throws {
        var done = 0
        while done < count {
            let want = min(count - done, Self.chunkPages)
            if buffer.count < want { buffer = [UInt64](repeating: 0, count: want) }
            let first = page &+ UInt64(done) * Self.pageSize
            let read = try buffer.withUnsafeMutableBytes { raw in
                Result { () throws(CowtraceError) -> Int in
                    try fd.pread(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<want * 8]),
                                 offset: (first / Self.pageSize) * 8, what: "pread(/proc/\(pid)/pagemap)", pid: pid)
                }
            }.get()
            let got = read / 8
            try buffer.withUnsafeBufferPointer { raw in
                try raw.withMemoryRebound(to: PagemapEntry.self) { try body(first, UnsafeBufferPointer(rebasing: $0[0..<got])) }
            }
            if got < want { return }
            done += got
        }
    }

    public func entry(_ page: UInt64) throws -> PagemapEntry {
        try entries(from: page, count: 1).first ?? PagemapEntry(raw: 0)
    }

    /// The runs of present pages in [start, end), in order, as (first page, page count).
    /// PAGEMAP_SCAN skips absent ranges in the kernel (a 16 TiB reservation with a few pages
    /// touched is a few ranges); without it, entries are read chunk by chunk.
    /// Mappings of at most this many pages are read whole by `forEachPresent`.
    static let readWholeBelow: UInt64 = 512

    public func forEachPresentRun(from start: UInt64, to end: UInt64, _ body: (UInt64, Int) throws -> Void) throws {
        guard start < end else { return }
        if Self.scanWorks {
            var cursor = start
            while cursor < end {
                var walkEnd: UInt64 = 0
                let n = regions.withUnsafeMutableBufferPointer { r in
                    cow_pagemap_scan_present(fd.raw, cursor, end, r.baseAddress, UInt64(r.count), &walkEnd)
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    if cursor == start && (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP) {
                        Self.scanWorks = false
                        break
                    }
                    throw CowtraceError(call: "ioctl(/proc/\(pid)/pagemap, PAGEMAP_SCAN)", pid: pid, errno: errno)
                }
                for i in 0..<n { try body(regions[i].start, Int((regions[i].end - regions[i].start) / Self.pageSize)) }
                if walkEnd <= cursor || walkEnd >= end { return }
                cursor = walkEnd
            }
            if Self.scanWorks { return }
        }
        // Without it: entries chunk by chunk (a copy each, so `body` may read pagemap too).
        var runStart: UInt64?
        var runLength = 0
        var page = start
        while page < end {
            let chunk = try entries(from: page, count: Int(min((end - page) / Self.pageSize, UInt64(Self.chunkPages))))
            for (i, entry) in chunk.enumerated() {
                if entry.present {
                    if runStart == nil { runStart = page + UInt64(i) * Self.pageSize; runLength = 0 }
                    runLength += 1
                } else if let s = runStart {
                    try body(s, runLength)
                    runStart = nil
                }
            }
            if chunk.count < Self.chunkPages { break }
            page += UInt64(chunk.count) * Self.pageSize
        }
        if let s = runStart { try body(s, runLength) }
    }

    /// Every present page of [start, end) with its entry, read only where pages are present.
    public func forEachPresent(from start: UInt64, to end: UInt64, _ body: (UInt64, PagemapEntry) throws -> Void) throws {
        // A small mapping (a library's data, a small heap, the stack) is read whole: one pread
        // of at most 4 KiB of entries, where asking the kernel where its present pages are
        // first would cost an ioctl more. A fork snapshots a dozen of them.
        if start < end && (end - start) / Self.pageSize <= Self.readWholeBelow {
            let all = try entries(from: start, count: Int((end - start) / Self.pageSize))
            for (i, entry) in all.enumerated() where entry.present { try body(start + UInt64(i) * Self.pageSize, entry) }
            return
        }
        try forEachPresentRun(from: start, to: end) { first, count in
            var done = 0
            while done < count {
                let chunkStart = first + UInt64(done) * Self.pageSize
                let chunk = try entries(from: chunkStart, count: min(count - done, Self.chunkPages))
                for (i, entry) in chunk.enumerated() where entry.present { try body(chunkStart + UInt64(i) * Self.pageSize, entry) }
                if chunk.isEmpty { break }
                done += chunk.count
            }
        }
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
