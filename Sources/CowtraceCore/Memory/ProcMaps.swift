import Glibc

/// One line of /proc/PID/maps.
public struct Mapping: Sendable, Equatable {
    public let start: UInt64
    public let end: UInt64
    public let readable: Bool
    public let writable: Bool
    public let executable: Bool
    /// 'p' (private, copy-on-write) or 's' (shared).
    public let isPrivate: Bool
    public let offset: UInt64
    public let inode: UInt64
    /// The path, "[stack]", "[heap]", "[vdso]"… or "" for anonymous memory.
    public let path: String

    public func contains(_ address: UInt64) -> Bool { address >= start && address < end }

    /// The region name used in output: the path, a bracketed name, or "anon".
    public var region: String { path.isEmpty ? "anon" : path }

    /// Private and writable: the mappings whose pages a fork shares copy-on-write.
    public var isCopyOnWrite: Bool { isPrivate && writable }
}

/// A parser for /proc/PID/maps. Pure: text in, mappings out; throws on a line it cannot read
/// rather than guessing. Paths may contain spaces: everything after the inode is the path.
public enum ProcMaps {
    public static func parse(_ text: String) throws -> [Mapping] {
        try parse(bytes: Array(text.utf8))
    }

    /// The same on the file's bytes: read at every fork, so parsed without building
    /// substrings (only a path becomes a String).
    public static func parse(bytes: [UInt8]) throws -> [Mapping] {
        var result: [Mapping] = []
        try bytes.withUnsafeBufferPointer { buffer in
            var lineStart = 0
            while lineStart < buffer.count {
                var lineEnd = lineStart
                while lineEnd < buffer.count && buffer[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                if lineEnd > lineStart {
                    let line = UnsafeBufferPointer(rebasing: buffer[lineStart..<lineEnd])
                    guard let mapping = parseLine(line) else {
                        throw CowtraceError("malformed /proc/PID/maps line: " + String(decoding: line, as: UTF8.self))
                    }
                    result.append(mapping)
                }
                lineStart = lineEnd + 1
            }
        }
        return result
    }

    /// One line: five space-separated fields, then the path (which may contain spaces), or
    /// nil if it cannot be read.
    static func parseLine(_ line: UnsafeBufferPointer<UInt8>) -> Mapping? {
        var i = 0
        let space = UInt8(ascii: " ")
        func skipSpaces() { while i < line.count && line[i] == space { i += 1 } }
        /// A number in `radix` up to `stop` (or the end of the line); nil if empty or bad.
        func number(radix: UInt64, until stop: UInt8) -> UInt64? {
            var value: UInt64 = 0
            let first = i
            while i < line.count && line[i] != stop {
                let c = line[i]
                let digit: UInt64
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: digit = UInt64(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: digit = UInt64(c - UInt8(ascii: "A") + 10)
                default: return nil
                }
                let (times, o1) = value.multipliedReportingOverflow(by: radix)
                let (sum, o2) = times.addingReportingOverflow(digit)
                if o1 || o2 { return nil }
                value = sum
                i += 1
            }
            return i > first ? value : nil
        }
        skipSpaces()
        guard let start = number(radix: 16, until: UInt8(ascii: "-")), i < line.count else { return nil }
        i += 1
        guard let end = number(radix: 16, until: space), start <= end, i < line.count else { return nil }
        skipSpaces()
        guard i + 4 <= line.count, i + 4 == line.count || line[i + 4] == space else { return nil }
        let perms = (line[i], line[i + 1], line[i + 2], line[i + 3])
        i += 4
        skipSpaces()
        guard let offset = number(radix: 16, until: space) else { return nil }
        skipSpaces()
        var sawColon = false
        let deviceStart = i
        while i < line.count && line[i] != space {
            if line[i] == UInt8(ascii: ":") { sawColon = true }
            i += 1
        }
        guard i > deviceStart, sawColon else { return nil }
        skipSpaces()
        guard let inode = number(radix: 10, until: space) else { return nil }
        skipSpaces()
        let path = i < line.count ? String(decoding: UnsafeBufferPointer(rebasing: line[i...]), as: UTF8.self) : ""
        return Mapping(start: start, end: end, readable: perms.0 == UInt8(ascii: "r"),
                       writable: perms.1 == UInt8(ascii: "w"), executable: perms.2 == UInt8(ascii: "x"),
                       isPrivate: perms.3 == UInt8(ascii: "p"), offset: offset, inode: inode, path: path)
    }

    /// Reads and parses /proc/PID/maps.
    public static func read(pid: pid_t) throws -> [Mapping] {
        try parse(bytes: readWholeFile("/proc/\(pid)/maps", pid: pid))
    }
}

extension Array where Element == Mapping {
    /// The mapping containing `address` (binary search; maps are sorted).
    public func mapping(containing address: UInt64) -> Mapping? {
        var low = 0, high = count - 1
        while low <= high {
            let mid = (low + high) / 2
            if self[mid].end <= address { low = mid + 1 } else if self[mid].start > address { high = mid - 1 } else { return self[mid] }
        }
        return nil
    }
}
