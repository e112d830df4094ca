import Glibc

/// Builds a `RunLog` from JSON events, one at a time: the reader feeds it a saved log's
/// lines, a live run the objects it emits, so both end with the same model.
public struct RunLogBuilder {
    public private(set) var log = RunLog()
    /// The log's stack ids -> indices into `log.stacks`.
    private var stackIndex: [Int64: Int] = [0: 0]
    private var interned: [[BacktraceFrame]: Int] = [[]: 0]
    /// Shares from the summary event, for logs written before `shared` events existed.
    private var summaryShares: [RunLog.Share] = []
    private var sequence = 0

    public init(keepsEvents: Bool = true) { log.keepsEvents = keepsEvents }

    /// The finished model.
    public func finish() -> RunLog {
        var result = log
        if result.shares.isEmpty { result.shares = summaryShares }
        return result
    }

    public mutating func add(_ object: JSONValue) throws(CowtraceError) {
        guard case .object(let fields) = object, let event = object["event"]?.stringValue else {
            throw CowtraceError("not a cowtrace event (no \"event\" field)")
        }
        try add(event, fields)
    }

    public mutating func add(_ event: String, _ fields: [(String, JSONValue)]) throws(CowtraceError) {
        sequence += 1
        let object = JSONValue.object(fields)
        func required<T>(_ key: String, _ get: (JSONValue) -> T?) throws(CowtraceError) -> T {
            guard let value = object[key]?.resolved, let typed = get(value) else {
                throw CowtraceError("\(event) event without a valid \"\(key)\"")
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
            try addSplit(fields)
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
            if event == "reuse" { log.tally.reuses += 1 } else { log.tally.drops += 1 }
            if log.keepsEvents {
                if event == "reuse" { log.reuses.append(record) } else { log.drops.append(record) }
            }
        case "exit":
            log.exits.append(RunLog.Exit(pid: try required("pid", pid32), status: optional("status", int),
                                         signal: optional("signal") { $0.stringValue }))
        case "process":
            name(try required("pid", pid32), program: try required("program") { $0.stringValue }, name: optional("name") { $0.stringValue })
        case "summary":
            var sweeps: [String: Int] = [:]
            if case .object(let bySyscall)? = object["full_sweeps_by_syscall"] {
                for (name, count) in bySyscall { sweeps[name] = count.intValue.map { Int($0) } }
            }
            log.totals = RunLog.Totals(engine: optional("engine") { $0.stringValue } ?? "?", steps: optional("steps", int) ?? 0,
                                       faults: optional("faults", int), stillShared: optional("still_shared", int) ?? 0,
                                       boundedChecks: optional("bounded_checks", int) ?? 0, fullSweeps: sweeps,
                                       lostSamples: optional("lost_samples", int).map { CowSummary.LostSamples(count: $0, bufferPages: optional("buffer_pages", int) ?? 0) })
            summaryShares = (optional("clones") { $0.arrayValue } ?? []).compactMap { c in
                guard let parent = c["parent"].flatMap(pid32), let child = c["child"].flatMap(pid32) else { return nil }
                return RunLog.Share(parent: parent, child: child, call: c["syscall"]?.stringValue ?? "clone",
                                    anon: c["anon"].flatMap(int) ?? 0, file: c["file"].flatMap(int) ?? 0, zero: c["zero"].flatMap(int) ?? 0)
            }
        default:
            break  // syscall lines and events added later: nothing a report needs
        }
    }

    /// One pass over the fields (a split is the event there are many of, live and saved).
    private mutating func addSplit(_ fields: [(String, JSONValue)]) throws(CowtraceError) {
        var page: UInt64?, region = "?", kind = "anon", writer: pid_t?, others: [pid_t] = []
        var frameBefore: UInt64?, frameAfter: UInt64?, cause: String?, detail: String?, ip: UInt64?
        var instruction: String?, address: UInt64?, size: Int?, syscall: String?, cloneFlag: String?
        var symbol: String?, source: String?, note: String?, engine: String?, time: Int64?
        var stackID: Int64?, backtrace: [JSONValue]?
        for (key, raw) in fields {
            let value = raw.resolved
            switch key {
            case "page": page = value.hexValue
            case "region": region = value.stringValue ?? region
            case "kind": kind = value.stringValue ?? kind
            case "writer": writer = value.intValue.flatMap { pid_t(exactly: $0) }
            case "others": others = (value.arrayValue ?? []).compactMap { $0.intValue.flatMap { pid_t(exactly: $0) } }
            case "frame_before": frameBefore = value.hexValue
            case "frame_after": frameAfter = value.hexValue
            case "cause": cause = value.stringValue
            case "detail": detail = value.stringValue
            case "ip": ip = value.hexValue
            case "instruction": instruction = value.stringValue
            case "address": address = value.hexValue
            case "size": size = value.intValue.map { Int($0) }
            case "syscall": syscall = value.stringValue
            case "clone_flag": cloneFlag = value.stringValue
            case "symbol": symbol = value.stringValue
            case "source": source = value.stringValue
            case "note": note = value.stringValue
            case "engine": engine = value.stringValue
            case "time_us": time = value.intValue
            case "stack": stackID = value.intValue
            case "backtrace": backtrace = value.arrayValue
            default: break
            }
        }
        guard let page else { throw CowtraceError("split event without a valid \"page\"") }
        guard let writer else { throw CowtraceError("split event without a valid \"writer\"") }
        guard let cause else { throw CowtraceError("split event without a valid \"cause\"") }
        let stack: Int
        if let stackID {
            guard let index = stackIndex[stackID] else { throw CowtraceError("split names stack \(stackID) before its stack event") }
            stack = index
        } else {
            stack = intern((backtrace ?? []).map(Self.frame))
        }
        let split = RunLog.Split(
            page: page, region: region, kind: kind, writer: writer, others: others, frameBefore: frameBefore, frameAfter: frameAfter,
            cause: cause, detail: detail, ip: ip, instruction: instruction, address: address, size: size, syscall: syscall,
            cloneFlag: cloneFlag, symbol: symbol, source: source, note: note, engine: engine, stack: stack, time: time,
            sequence: sequence)
        log.tally.add(split, hasFrames: stack != 0)
        if log.keepsEvents { log.splits.append(split) }
    }

    /// Backtraces of a live run, keyed by addresses and checked for equality (cheaper than
    /// hashing every frame's strings).
    private var liveStacks: [[UInt64]: [(frames: [BacktraceFrame], index: Int)]] = [:]
    /// The last backtrace seen, recognised by identity (the symbolizer hands a loop's splits one array).
    private var lastLiveStack: (frames: [BacktraceFrame], index: Int) = ([], 0)

    /// A split of a live run, with the values its JSON object would read back as.
    public mutating func add(_ s: Split, time: Int?) {
        sequence += 1
        var stack = 0
        if sameStorage(s.backtrace, lastLiveStack.frames) {
            stack = lastLiveStack.index
        } else if !s.backtrace.isEmpty {
            let key = s.backtrace.map(\.ip)
            if let hit = liveStacks[key]?.first(where: { $0.frames == s.backtrace }) {
                stack = hit.index
            } else {
                stack = intern(s.backtrace)
                liveStacks[key, default: []].append((s.backtrace, stack))
            }
            lastLiveStack = (s.backtrace, stack)
        }
        var ip: UInt64?, instruction: String?, address: UInt64?, size: Int?, syscall: String?, cloneFlag: String?
        var detail: String?, note: String?
        switch s.cause {
        case .instruction(let w): (ip, instruction, address, size) = (w.ip, w.text, w.address, w.size)
        case .syscall(let call): syscall = call.name
        case .clone(let store, let pointer): (cloneFlag, address, size) = (store.rawValue, pointer, 4)
        case .kernel(let store): detail = store?.rawValue
        case .unknown(let n): note = n
        }
        let top = s.backtrace.first
        let split = RunLog.Split(
            page: s.page, region: s.region, kind: s.kind.rawValue, writer: s.writer, others: s.others,
            frameBefore: FrameNumber.known(s.frameBefore), frameAfter: FrameNumber.known(s.frameAfter),
            cause: s.cause.name, detail: detail, ip: ip, instruction: instruction, address: address, size: size,
            syscall: syscall, cloneFlag: cloneFlag, symbol: top?.symbol.map { symbolWithOffset($0, top?.offset) },
            source: top?.source, note: note, engine: s.engine.rawValue, stack: stack, time: time.map { Int64($0) },
            sequence: sequence)
        log.tally.add(split, hasFrames: stack != 0)
        if log.keepsEvents { log.splits.append(split) }
    }

    /// The run's other events of a live run, with the values their JSON objects would read
    /// back as (`add(_:_:)` from `JSONEventEncoder.encode`; the report tests hold them equal),
    /// without building and searching the objects: a fork and an exit are events per child.
    public mutating func addProcess(_ pid: pid_t, program: String, name: String?) {
        sequence += 1
        self.name(pid, program: program, name: name)
    }

    /// A pid's program, and its name as ps shows it when it has one.
    private mutating func name(_ pid: pid_t, program: String, name: String?) {
        log.programs[pid] = program
        if let name, !name.isEmpty { log.names[pid] = name }
    }

    public mutating func add(_ s: SharedPages) {
        sequence += 1
        log.shares.append(RunLog.Share(parent: s.parent, child: s.child, call: s.call, anon: s.anon, file: s.file, zero: s.zero))
    }

    public mutating func add(_ c: CloneRecord) {
        sequence += 1
        log.clones.append(RunLog.Clone(pid: c.pid, child: c.child, call: c.syscall, flags: c.flags, sharesMemory: c.sharesMemory,
                                       sharedPages: c.sharedPages))
    }

    public mutating func add(_ e: ExitRecord) {
        guard e.isLeader else { return }
        sequence += 1
        switch e.how {
        case .exited(let code): log.exits.append(RunLog.Exit(pid: e.tid, status: Int(code), signal: nil))
        case .killed(let signal, _): log.exits.append(RunLog.Exit(pid: e.tid, status: nil, signal: SignalNames.name(signal)))
        }
    }

    /// Drops of a live run that keeps no events: only their count matters (a process
    /// leaving thousands of shared pages at its exit).
    public mutating func addDrops(_ count: Int) {
        sequence += count
        log.tally.drops += count
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
            } catch {
                throw CowtraceError("line \(number) is not cowtrace JSON: \(error.message)")
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
            let n = try chunk.withUnsafeMutableBytes { buffer throws(CowtraceError) in
                try systemCall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
