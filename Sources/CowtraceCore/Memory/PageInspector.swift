import Glibc

/// `paddr` and `pages`: what pagemap says about addresses and mappings of live processes.
public enum PageInspector {
    public struct AddressInfo: Sendable {
        public let address: UInt64
        public let page: UInt64
        public let entry: PagemapEntry
        public let mapping: Mapping
        public let zeroPage: Bool
        /// From /proc/kpagecount, when readable.
        public let mapCount: UInt64?

        /// One line: virtual page, frame, physical address, flags, map count, mapping.
        public var text: String {
            var out = "\(hex(address))  page \(hex(page))  "
            if entry.present && entry.frame != 0 {
                out += "frame \(hex(entry.frame))  phys \(hex(entry.frame * 4096 + (address & 4095)))"
            } else if entry.present {
                out += "frame unknown (hidden without CAP_SYS_ADMIN)"
            } else {
                out += "frame none"
            }
            var flags: [String] = []
            flags.append(entry.present ? "present" : "not-present")
            if entry.swapped { flags.append("swapped") }
            if entry.exclusive { flags.append("exclusive") }
            if entry.softDirty { flags.append("soft-dirty") }
            if entry.present { flags.append(zeroPage ? "zero-page" : entry.fileOrShared ? "file/shared" : "anon") }
            out += "  " + flags.joined(separator: " ")
            if let mapCount { out += "  mapcount \(mapCount)" }
            return out + "  \(mapping.region)"
        }
    }

    static func requireProcess(_ pid: pid_t, _ command: String) throws {
        guard pid > 0, access("/proc/\(pid)", F_OK) == 0 else { throw CowtraceError("\(command): pid \(pid): No such process") }
    }

    /// Parses an address argument: 0x… hex or decimal.
    public static func parseAddress(_ text: String) throws -> UInt64 {
        let value = text.hasPrefix("0x") || text.hasPrefix("0X") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let value else { throw CowtraceError("malformed address '\(text)': expected 0x… or a decimal number") }
        return value
    }

    public static func describe(pid: pid_t, addresses: [UInt64]) throws -> [AddressInfo] {
        try requireProcess(pid, "paddr")
        let maps = try ProcMaps.read(pid: pid)
        let pagemap = try Pagemap(pid: pid)
        return try addresses.map { address in
            guard let mapping = maps.mapping(containing: address) else {
                throw CowtraceError("paddr: \(hex(address)) is outside every mapping of pid \(pid)")
            }
            let page = address & ~4095
            let entry = try pagemap.entry(page)
            return AddressInfo(address: address, page: page, entry: entry, mapping: mapping,
                               zeroPage: entry.present && ZeroPage.frame == entry.frame && entry.frame != 0,
                               mapCount: entry.present && entry.frame != 0 ? mapCount(entry.frame) : nil)
        }
    }

    static func mapCount(_ frame: UInt64) -> UInt64? {
        guard let fd = try? OwnedFileDescriptor.open("/proc/kpagecount", flags: O_RDONLY) else { return nil }
        var count: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &count) { Glibc.pread(fd.raw, $0.baseAddress, 8, off_t(Int64(bitPattern: frame * 8))) }
        return n == 8 ? count : nil
    }

    public struct MappingShare: Sendable {
        public let mapping: Mapping
        public let present: Int
        /// Pages at the same address with the same frame in each other process, in order.
        public let sharedWith: [Int]
        /// Present pages shared with none of the others.
        public let privatePages: Int
        /// Present pages pagemap marks exclusive (mapped by this process only): all that can
        /// be told without frame numbers.
        public let exclusive: Int
        /// Page by page: (page, frame, the other pids sharing it, exclusive).
        public let pages: [(page: UInt64, frame: UInt64, sharedWith: [pid_t], exclusive: Bool)]
    }

    public static func compare(_ pids: [pid_t]) throws -> (framesVisible: Bool, mappings: [MappingShare]) {
        for pid in pids { try requireProcess(pid, "pages") }
        let first = pids[0], others = Array(pids.dropFirst())
        let maps = try ProcMaps.read(pid: first)
        let ownMap = try Pagemap(pid: first)
        let otherMaps = try others.map { try Pagemap(pid: $0) }
        var visible = false
        var result: [MappingShare] = []
        for mapping in maps where mapping.path != "[vsyscall]" {
            // Present pages only, a bounded chunk at a time: a huge reservation costs nothing.
            var sharedWith = [Int](repeating: 0, count: others.count)
            var present = 0, privatePages = 0, exclusive = 0
            var pages: [(UInt64, UInt64, [pid_t], Bool)] = []
            try? ownMap.forEachPresentRun(from: mapping.start, to: mapping.end) { first, count in
                var done = 0
                while done < count {
                    let start = first + UInt64(done) * Pagemap.pageSize
                    let n = min(count - done, Pagemap.chunkPages)
                    let mine = (try? ownMap.entries(from: start, count: n)) ?? []
                    let theirs = otherMaps.map { (try? $0.entries(from: start, count: n)) ?? [] }
                    for (i, e) in mine.enumerated() where e.present {
                        present += 1
                        if e.exclusive { exclusive += 1 }
                        if e.frame != 0 { visible = true }
                        var sharing: [pid_t] = []
                        for (k, other) in theirs.enumerated() where i < other.count {
                            if other[i].present && other[i].frame == e.frame && e.frame != 0 {
                                sharedWith[k] += 1
                                sharing.append(others[k])
                            }
                        }
                        if sharing.isEmpty { privatePages += 1 }
                        pages.append((start + UInt64(i) * Pagemap.pageSize, e.frame, sharing, e.exclusive))
                    }
                    if mine.isEmpty { break }
                    done += mine.count
                }
            }
            result.append(MappingShare(mapping: mapping, present: present, sharedWith: sharedWith, privatePages: privatePages,
                                       exclusive: exclusive, pages: pages))
        }
        // A process that exited meanwhile reads as empty: the counts would be wrong, not zero.
        for pid in pids where ProcFS.isExiting(pid) {
            throw CowtraceError("pages: pid \(pid) exited while its pages were read")
        }
        return (visible, result)
    }
}
