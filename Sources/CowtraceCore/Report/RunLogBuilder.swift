import Glibc

/// Builds a `RunLog` from JSON events, one at a time: the reader feeds it a saved log's
/// lines, a live run the objects it emits, so both end with the same model.
public struct RunLogBuilder {
    public struct Failure: Error, Equatable {
        public let message: String
    }

    public private(set) var log = RunLog()
    /// The log's stack ids -> indices into `log.stacks`.
    private var stackIndex: [Int64: Int] = [0: 0]
    private var interned: [[BacktraceFrame]: Int] = [[]: 0]
    /// Shares from the summary event, for logs written before `shared` events existed.
    private var summaryShares: [RunLog.Share] = []
    private var sequence = 0

    public init() {}

    /// The finished model.
    public func finish() -> RunLog {
        var result = log
        if result.shares.isEmpty { result.shares = summaryShares }
        return result
    }

    public mutating func add(_ object: JSONValue) throws(Failure) {
        guard case .object(let fields) = object, let event = object["event"]?.stringValue else {
            throw Failure(message: "not a cowtrace event (no \"event\" field)")
        }
        try add(event, fields)
    }

    public mutating func add(_ event: String, _ fields: [(String, JSONValue)]) throws(Failure) {
        sequence += 1
        let object = JSONValue.object(fields)
        func required<T>(_ key: String, _ get: (JSONValue) -> T?) throws(Failure) -> T {
            guard let value = object[key]?.resolved, let typed = get(value) else {
                throw Failure(message: "\(event) event without a valid \"\(key)\"")
            }
            return typed
        }
        func optional<T>(_ key: String, _ get: (JSONValue) -> T?) -> T? { object[key].flatMap { get($0.resolved) } }
        let pid32 = { (v: JSONValue) in v.intValue.flatMap { pid_t(exactly: $0) } }
        let int = { (v: JSONValue) in v.intValue.map { Int($0) } }
        switch event {
        case "stack":
            let id = try required("id") { $0.intValue }
            let frames = try required("frames") { $0.arrayValue }
            stackIndex[id] = intern(frames.map(Self.frame))
        case "split":
            let stack: Int
            if let id = optional("stack", { $0.intValue }) {
                guard let index = stackIndex[id] else { throw Failure(message: "split names stack \(id) before its stack event") }
                stack = index
            } else {
                stack = intern((optional("backtrace") { $0.arrayValue } ?? []).map(Self.frame))
            }
            log.splits.append(RunLog.Split(
                page: try required("page") { $0.hexValue }, region: optional("region") { $0.stringValue } ?? "?",
                kind: optional("kind") { $0.stringValue } ?? "anon",
                writer: try required("writer", pid32),
                others: (optional("others") { $0.arrayValue } ?? []).compactMap(pid32),
                frameBefore: optional("frame_before") { $0.hexValue }, frameAfter: optional("frame_after") { $0.hexValue },
                cause: try required("cause") { $0.stringValue }, detail: optional("detail") { $0.stringValue },
                ip: optional("ip") { $0.hexValue }, instruction: optional("instruction") { $0.stringValue },
                address: optional("address") { $0.hexValue }, size: optional("size", int),
                syscall: optional("syscall") { $0.stringValue }, cloneFlag: optional("clone_flag") { $0.stringValue },
                symbol: optional("symbol") { $0.stringValue }, source: optional("source") { $0.stringValue },
                note: optional("note") { $0.stringValue }, engine: optional("engine") { $0.stringValue },
                stack: stack, time: optional("time_us") { $0.intValue }, sequence: sequence))
        case "shared":
            log.shares.append(RunLog.Share(
                parent: try required("pid", pid32), child: try required("child", pid32),
                call: optional("syscall") { $0.stringValue } ?? "clone",
                anon: optional("anon", int) ?? 0, file: optional("file", int) ?? 0, zero: optional("zero", int) ?? 0))
        case "clone":
            log.clones.append(RunLog.Clone(
                pid: try required("pid", pid32), child: try required("child", pid32),
                call: optional("syscall") { $0.stringValue } ?? "clone",
                flags: (optional("flags") { $0.arrayValue } ?? []).compactMap(\.stringValue),
                sharesMemory: optional("shares_memory") { $0.boolValue } ?? false,
                sharedPages: optional("shared_pages", int) ?? 0))
        case "reuse", "drop":
            let record = RunLog.PageEvent(
                pid: try required("pid", pid32), page: try required("page") { $0.hexValue },
                region: optional("region") { $0.stringValue } ?? "?", frame: optional("frame") { $0.hexValue },
                reason: optional("reason") { $0.stringValue }, time: optional("time_us") { $0.intValue }, sequence: sequence)
            if event == "reuse" { log.reuses.append(record) } else { log.drops.append(record) }
        case "exit":
            log.exits.append(RunLog.Exit(pid: try required("pid", pid32), status: optional("status", int),
                                         signal: optional("signal") { $0.stringValue }))
        case "process":
            log.programs[try required("pid", pid32)] = try required("program") { $0.stringValue }
        case "summary":
            log.totals = RunLog.Totals(engine: optional("engine") { $0.stringValue } ?? "?", steps: optional("steps", int) ?? 0,
                                       faults: optional("faults", int), stillShared: optional("still_shared", int) ?? 0)
            summaryShares = (optional("clones") { $0.arrayValue } ?? []).compactMap { c in
                guard let parent = c["parent"].flatMap(pid32), let child = c["child"].flatMap(pid32) else { return nil }
                return RunLog.Share(parent: parent, child: child, call: c["syscall"]?.stringValue ?? "clone",
                                    anon: c["anon"].flatMap(int) ?? 0, file: c["file"].flatMap(int) ?? 0, zero: c["zero"].flatMap(int) ?? 0)
            }
        default:
            break  // syscall lines and events added later: nothing a report needs
        }
    }

    private mutating func intern(_ frames: [BacktraceFrame]) -> Int {
        if let index = interned[frames] { return index }
        log.stacks.append(frames)
        interned[frames] = log.stacks.count - 1
        return log.stacks.count - 1
    }

    static func frame(_ value: JSONValue) -> BacktraceFrame {
        BacktraceFrame(ip: value["ip"]?.hexValue ?? 0, symbol: value["symbol"]?.stringValue,
                       offset: value["offset"]?.intValue.map { UInt64(bitPattern: $0) },
                       module: value["module"]?.stringValue, moduleOffset: value["module_offset"]?.hexValue,
                       source: value["source"]?.stringValue)
    }
}

/// Reads a saved `--json` log into a `RunLog`.
public enum RunLogReader {
    /// Parses the text of a log; a line that is not a cowtrace event fails with its number.
    public static func read(text: some StringProtocol) throws -> RunLog {
        var builder = RunLogBuilder()
        var number = 0
        var sawEvent = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            if line.allSatisfy({ $0 == " " || $0 == "\r" || $0 == "\t" }) { continue }
            do {
                try builder.add(JSONParser.parse(line))
                sawEvent = true
            } catch let failure as JSONParser.Failure {
                throw CowtraceError("line \(number) is not cowtrace JSON: \(failure.message) at column \(failure.offset + 1)")
            } catch let failure as RunLogBuilder.Failure {
                throw CowtraceError("line \(number) is not cowtrace JSON: \(failure.message)")
            }
        }
        guard sawEvent else { throw CowtraceError("no cowtrace events (the log is empty)") }
        return builder.finish()
    }

    /// Reads the log at `path`; the error names the file.
    public static func read(path: String) throws -> RunLog {
        let text = try readFile(path)
        do {
            return try read(text: text)
        } catch let error as CowtraceError {
            throw CowtraceError("\(path): \(error.message)")
        }
    }

    static func readFile(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CowtraceError("cannot open \(path): \(ErrnoNames.message(errno))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { buffer throws(SystemCallError) in
                try systemCall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
