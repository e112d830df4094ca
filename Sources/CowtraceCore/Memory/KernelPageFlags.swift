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

    /// The same for many frames, read in one pread per cluster of adjacent frames (the frames
    /// of a run of pages touched one after another often are): frame -> THP bit.
    func areTransparentHuge(_ frames: [UInt64]) -> [UInt64: Bool] {
        guard let fd else { return [:] }
        let sorted = Set(frames.compactMap(FrameNumber.known)).sorted()
        var result: [UInt64: Bool] = [:]
        result.reserveCapacity(sorted.count)
        var words = [UInt64](repeating: 0, count: Self.cluster)
        var i = 0
        while i < sorted.count {
            let first = sorted[i]
            var j = i + 1
            // The kernel looks up every frame read: a cluster grows only over small gaps.
            while j < sorted.count && sorted[j] - sorted[j - 1] <= Self.gap && sorted[j] - first < UInt64(Self.cluster) { j += 1 }
            let count = Int(sorted[j - 1] - first) + 1
            let n = words.withUnsafeMutableBytes { buffer in
                (try? fd.pread(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count * 8]), offset: first * 8,
                               what: "pread(/proc/kpageflags)")) ?? 0
            }
            for frame in sorted[i..<j] where Int(frame - first) < n / 8 {
                result[frame] = words[Int(frame - first)] & Self.thpBit != 0
            }
            i = j
        }
        return result
    }

    /// Frames read together: at most this many in one read, with gaps of at most `gap`.
    static let cluster = 512
    static let gap: UInt64 = 8
}
