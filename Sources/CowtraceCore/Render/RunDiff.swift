/// `cowtrace diff A B`: pages copied per function (frame #0) and per call path in two runs,
/// the biggest change first (gc.freeze() on and off, a warm-up, a patch). Processes are
/// matched by nothing: pids differ between runs, so the counts are over all processes.
public struct RunDiff {
    public struct Row: Equatable {
        public let name: String
        public let a: Int
        public let b: Int
        public var change: Int { b - a }
    }

    public let splitsA: Int
    public let splitsB: Int
    public let functions: [Row]
    public let stacks: [Row]

    public init(_ a: RunLog, _ b: RunLog) {
        splitsA = a.splits.count
        splitsB = b.splits.count
        functions = Self.rows(Self.counts(a) { a.leafName($0) }, Self.counts(b) { b.leafName($0) })
        stacks = Self.rows(Self.counts(a) { a.pathNames($0).joined(separator: " → ") },
                           Self.counts(b) { b.pathNames($0).joined(separator: " → ") })
    }

    static func counts(_ log: RunLog, _ key: (RunLog.Split) -> String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for split in log.splits { counts[key(split), default: 0] += 1 }
        return counts
    }

    static func rows(_ a: [String: Int], _ b: [String: Int]) -> [Row] {
        Set(a.keys).union(b.keys).map { Row(name: $0, a: a[$0] ?? 0, b: b[$0] ?? 0) }.sorted {
            if abs($0.change) != abs($1.change) { return abs($0.change) > abs($1.change) }
            if max($0.a, $0.b) != max($1.a, $1.b) { return max($0.a, $0.b) > max($1.a, $1.b) }
            return $0.name < $1.name
        }
    }

    public func textLines(nameA: String, nameB: String, limit: Int = 20) -> [String] {
        func signed(_ n: Int) -> String { n > 0 ? "+\(n)" : "\(n)" }
        func row(_ r: Row) -> String {
            "  \(String(r.a).leftPadded(8, with: " "))  \(String(r.b).leftPadded(8, with: " "))  \(signed(r.change).leftPadded(8, with: " "))  "
                + "\(ByteCount.text(pages: abs(r.change)).leftPadded(9, with: " "))  \(r.name)"
        }
        var lines = [
            "cow diff: A = \(nameA), B = \(nameB)",
            "  pages copied: A \(splitsA) (\(ByteCount.text(pages: splitsA))), B \(splitsB) (\(ByteCount.text(pages: splitsB))), change \(signed(splitsB - splitsA))",
            "  per function (frame #0), biggest change first:",
            "         A         B    change      bytes  function",
        ]
        lines += functions.prefix(limit).map(row)
        lines += ["  per call path (outermost first), biggest change first:", "         A         B    change      bytes  path"]
        lines += stacks.prefix(limit).map(row)
        return lines
    }
}
