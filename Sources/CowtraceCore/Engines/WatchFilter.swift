/// `--watch`: which pages to track. Pure parsing; an empty filter tracks everything.
public struct WatchFilter: Sendable, Equatable {
    public enum Item: Sendable, Equatable {
        case address(UInt64)
        case range(UInt64, UInt64)
        /// A maps name: "[stack]", "[heap]", or a path.
        case region(String)
    }

    public let items: [Item]
    public var isEmpty: Bool { items.isEmpty }

    public init(items: [Item] = []) { self.items = items }

    public init(parsing specs: [String]) throws {
        items = try specs.map(Self.parse)
    }

    static func parse(_ spec: String) throws -> Item {
        let bad = CowtraceError("malformed --watch '\(spec)': expected ADDR, 0xA-0xB, a maps name such as [stack], or /path")
        if spec.hasPrefix("[") {
            guard spec.hasSuffix("]"), spec.count > 2 else { throw bad }
            return .region(spec)
        }
        if spec.hasPrefix("/") { return .region(spec) }
        let parts = spec.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let first = parseAddress(parts[0]) else { throw bad }
        if parts.count == 1 { return .address(first) }
        guard let second = parseAddress(parts[1]), second > first else { throw bad }
        return .range(first, second)
    }

    static func parseAddress(_ text: Substring) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        return UInt64(text)
    }

    /// Whether `page` in `mapping` is watched.
    public func includes(page: UInt64, in mapping: Mapping) -> Bool {
        if items.isEmpty { return true }
        return items.contains { item in
            switch item {
            case .address(let a): return a & ~4095 == page
            case .range(let a, let b): return page + 4096 > a && page < b
            case .region(let name): return mapping.path == name
            }
        }
    }
}
