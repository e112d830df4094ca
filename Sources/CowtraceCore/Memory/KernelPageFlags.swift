import Glibc

/// /proc/kpageflags (root only): one 64-bit word of flags per physical frame
/// (Documentation/admin-guide/mm/pagemap.rst).
final class KernelPageFlags {
    /// KPF_THP: the frame is part of a transparent huge page.
    static let thpBit: UInt64 = 1 << 22
    private let fd: OwnedFileDescriptor?

    init() { fd = try? OwnedFileDescriptor.open("/proc/kpageflags", flags: O_RDONLY) }

    /// The frame's flags; nil when the file is unreadable or the frame unknown.
    func flags(_ frame: UInt64) -> UInt64? {
        guard let fd, let frame = FrameNumber.known(frame) else { return nil }
        var word: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &word) { buffer in
            try? fd.pread(into: buffer, offset: frame * 8, what: "pread(/proc/kpageflags)")
        }
        return n == 8 ? word : nil
    }

    /// Whether the frame was part of a transparent huge page; nil when unreadable.
    func isTransparentHuge(_ frame: UInt64) -> Bool? { flags(frame).map { $0 & Self.thpBit != 0 } }
}
