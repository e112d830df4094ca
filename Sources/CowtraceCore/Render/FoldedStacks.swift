/// Folded stacks (`prog-pid;outer;…;inner COUNT`), the input of FlameGraph and of most
/// flame-graph viewers: one line per distinct stack, COUNT pages copied, the counts adding
/// up to the splits. Splits without a user backtrace end in a frame naming their cause.
public enum FoldedStacks {
    public static func render(_ log: RunLog) -> String {
        var counts: [String: Int] = [:]
        for split in log.splits {
            let names = ["\(log.programName(split.writer))-\(split.writer)"] + log.pathNames(split)
            counts[names.map(clean).joined(separator: ";"), default: 0] += 1
        }
        // Sorted: a live run and `report` on its log write the same bytes.
        return counts.keys.sorted().map { "\($0) \(counts[$0]!)\n" }.joined()
    }

    /// The format's separators (';' between frames, the last space before the count, one
    /// line per stack) cannot appear inside a name.
    static func clean(_ name: String) -> String {
        String(name.map { $0 == ";" ? ":" : ($0 == "\n" || $0 == "\r" ? " " : $0) })
    }
}
