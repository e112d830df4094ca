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

public enum ProcMapsError: Error, CustomStringConvertible, Equatable {
    case malformed(line: String)
    public var description: String {
        switch self { case .malformed(let line): "malformed /proc/PID/maps line: \(line)" }
    }
}

/// A parser for /proc/PID/maps. Pure: text in, mappings out; throws on a line it cannot read
/// rather than guessing. Paths may contain spaces: everything after the inode is the path.
public enum ProcMaps {
    public static func parse(_ text: String) throws -> [Mapping] {
        var result: [Mapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            result.append(try parseLine(line))
        }
        return result
    }

    static func parseLine(_ line: Substring) throws -> Mapping {
        var fields: [Substring] = []
        var rest = line[...]
        // Five space-separated fields, then the path (which may contain spaces).
        for _ in 0..<5 {
            rest = rest.drop { $0 == " " }
            guard let space = rest.firstIndex(of: " ") else {
                if fields.count == 4 && !rest.isEmpty { fields.append(rest); rest = ""; break }
                throw ProcMapsError.malformed(line: String(line))
            }
            fields.append(rest[..<space])
            rest = rest[space...]
        }
        guard fields.count == 5 else { throw ProcMapsError.malformed(line: String(line)) }
        let path = String(rest.drop { $0 == " " })
        let range = fields[0].split(separator: "-")
        let perms = Array(fields[1].utf8)
        guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
              start <= end, perms.count == 4,
              let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4]),
              fields[3].contains(":")
        else { throw ProcMapsError.malformed(line: String(line)) }
        return Mapping(start: start, end: end, readable: perms[0] == UInt8(ascii: "r"),
                       writable: perms[1] == UInt8(ascii: "w"), executable: perms[2] == UInt8(ascii: "x"),
                       isPrivate: perms[3] == UInt8(ascii: "p"), offset: offset, inode: inode, path: path)
    }

    /// Reads and parses /proc/PID/maps.
    public static func read(pid: pid_t) throws -> [Mapping] {
        let bytes = try readWholeFile("/proc/\(pid)/maps", pid: pid)
        return try parse(String(decoding: bytes, as: UTF8.self))
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
