/// A speedscope file (https://www.speedscope.app/file-format-schema.json, src/lib/file-format-spec.ts
/// in jlfwong/speedscope): one `sampled` profile per process, each sample one split's backtrace
/// outermost first, weighted 4096 bytes. A split without a user backtrace is one frame naming
/// its cause, so the weights add up to every page copied.
public enum SpeedscopeProfile {
    public static let schema = "https://www.speedscope.app/file-format-schema.json"

    public static func render(_ log: RunLog, name: String = "cowtrace") -> String {
        var frames: [JSONValue] = []
        var frameIndex: [FrameKey: Int] = [:]
        func index(_ key: FrameKey) -> Int {
            if let i = frameIndex[key] { return i }
            var fields: [(String, JSONValue)] = [("name", .string(key.name))]
            if let file = key.file { fields.append(("file", .string(file))) }
            if let line = key.line { fields.append(("line", .int(line))) }
            frames.append(.object(fields))
            frameIndex[key] = frames.count - 1
            return frames.count - 1
        }
        // Each distinct stack's frame indices, computed once.
        var stackSamples: [Int: [JSONValue]] = [:]
        var bySplitPid: [Int32: (samples: [JSONValue], weights: Int)] = [:]
        var order: [Int32] = []
        for split in log.splits {
            let sample: [JSONValue]
            if log.stacks[split.stack].isEmpty {
                sample = [.int(index(FrameKey(name: RunLog.causeFrameName(split), file: nil, line: nil)))]
            } else if let known = stackSamples[split.stack] {
                sample = known
            } else {
                sample = log.stacks[split.stack].reversed().map { .int(index(FrameKey($0))) }
                stackSamples[split.stack] = sample
            }
            if bySplitPid[split.writer] == nil { order.append(split.writer) }
            bySplitPid[split.writer, default: ([], 0)].samples.append(.array(sample))
            bySplitPid[split.writer]!.weights += 1
        }
        let weight = JSONValue.int(RunLog.pageSize)
        let profiles: [JSONValue] = order.map { pid in
            let entry = bySplitPid[pid]!
            return .object([
                ("type", .string("sampled")), ("name", .string("\(log.programName(pid)) pid \(pid)")), ("unit", .string("bytes")),
                ("startValue", .int(0)), ("endValue", .int(entry.weights * RunLog.pageSize)),
                ("samples", .array(entry.samples)), ("weights", .array(Array(repeating: weight, count: entry.weights))),
            ])
        }
        let file = JSONValue.object([
            ("$schema", .string(schema)),
            ("shared", .object([("frames", .array(frames))])),
            ("profiles", .array(profiles)),
            ("name", .string(name)), ("activeProfileIndex", .int(0)), ("exporter", .string("cowtrace")),
        ])
        return file.encoded() + "\n"
    }

    struct FrameKey: Hashable {
        let name: String, file: String?, line: Int?

        init(name: String, file: String?, line: Int?) {
            self.name = name
            self.file = file
            self.line = line
        }

        init(_ frame: BacktraceFrame) {
            let location = SourceLocation(frame.source)
            self.init(name: RunLog.functionName(frame), file: location?.file ?? frame.module, line: location?.line)
        }
    }
}

/// "file.c:12" split into file and line.
struct SourceLocation {
    let file: String, line: Int?

    init?(_ source: String?) {
        guard let source, !source.isEmpty else { return nil }
        if let colon = source.lastIndex(of: ":"), let line = Int(source[source.index(after: colon)...]) {
            file = String(source[..<colon])
            self.line = line
        } else {
            file = source
            line = nil
        }
    }
}
