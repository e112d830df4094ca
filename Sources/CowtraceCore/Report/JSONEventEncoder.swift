import Glibc

/// Trace events as the JSON log's objects (SPEC "JSON events"), in order. Besides one object
/// per event it writes each distinct backtrace once, as a `stack` event before its first use
/// (a split names it with `"stack":N`; 0 is no backtrace), and a `process` event naming a
/// pid's program the first time the pid appears. The --json log and the live run model
/// (`SummaryCollector`) both take their objects from here.
public struct JSONEventEncoder {
    /// Backtraces already given an id; keyed by addresses, checked for equality.
    private var stackIDs: [[UInt64]: [(frames: [BacktraceFrame], id: Int)]] = [:]
    private var nextStackID = 1
    /// The last backtrace named, recognised by identity (a loop's splits share one array).
    private var lastStack: (frames: [BacktraceFrame], id: Int)?
    private var programsSeen: Set<pid_t> = []
    private let start = Self.monotonicMicroseconds()
    private let formats = FrameFormats()

    public init() {}

    public mutating func encode(_ event: TraceEvent, _ emit: (String, [(String, JSONValue)]) -> Void) {
        switch event {
        case .syscall(let r):
            var fields: [(String, JSONValue)] = [("pid", .int32(r.tid)), ("name", .string(r.name)), ("ret", r.ret.map { .int($0) } ?? .null)]
            if let errno = r.errno { fields.append(("errno", .string(errno))) }
            fields.append(("text", .string(r.line)))
            emit("syscall", fields)
        case .clone(let c):
            emit("clone", [
                ("pid", .int32(c.pid)), ("child", .int32(c.child)), ("syscall", .string(c.syscall)),
                ("flags", .array(c.flags.map { .string($0) })), ("exit_signal", .string(c.exitSignal)),
                ("child_tidptr", .hex(c.childTidPointer)), ("parent_tid", .hex(c.parentTid)),
                ("shares_memory", .bool(c.sharesMemory)), ("shared_pages", .int(c.sharedPages)),
            ])
        case .shared(let s):
            nameProgram(s.parent, emit)
            nameProgram(s.child, emit)
            emit("shared", [("pid", .int32(s.parent)), ("child", .int32(s.child)), ("syscall", .string(s.call)),
                            ("anon", .int(s.anon)), ("file", .int(s.file)), ("zero", .int(s.zero)), ("time_us", .int(elapsed()))])
        case .split(let split):
            nameProgram(split.writer, emit)
            let stack = stackID(split.backtrace, emit)
            var fields = Self.json(split, formats: formats, stack: stack)
            fields.append(("time_us", .int(elapsed())))
            emit("split", fields)
        case .reuse(let r):
            emit("reuse", [("pid", .int32(r.pid)), ("page", .hex(r.page)), ("region", .string(r.region)),
                           ("frame", .hex(FrameNumber.known(r.frame))), ("ip", .hex(r.ip)), ("time_us", .int(elapsed()))])
        case .drop(let d):
            let time = elapsed()
            for p in d.pages {
                emit("drop", [("pid", .int32(d.pid)), ("page", .hex(p.page)), ("region", .string(p.region)),
                              ("frame", .hex(FrameNumber.known(p.frame))), ("reason", .string(d.reason)), ("time_us", .int(time))])
            }
        case .exit(let e):
            guard e.isLeader else { return }
            switch e.how {
            case .exited(let code): emit("exit", [("pid", .int32(e.tid)), ("status", .int32(code)), ("signal", .null)])
            case .killed(let signal, _): emit("exit", [("pid", .int32(e.tid)), ("status", .null), ("signal", .string(SignalNames.name(signal)))])
            }
        case .note(let text):
            emit("note", [("text", .string(text))])
        case .summary(let summary):
            emit("summary", summary.json())
        case .syscallEntry, .signal, .text:
            break
        }
    }

    /// A split's whole line (`{"event":"split",…}` and its newline) appended as bytes, with
    /// what one instruction's splits share formatted once: the same text `encode` writes,
    /// without building its fields (a split per page copied). False, having written nothing,
    /// for the causes left to `encode` (they are rare).
    public mutating func encodeSplitLine(_ s: Split, into out: inout [UInt8], _ emit: (String, [(String, JSONValue)]) -> Void) -> Bool {
        guard case .instruction(let w) = s.cause, w.ranges.isEmpty else { return false }
        nameProgram(s.writer, emit)
        let stack = stackID(s.backtrace, emit)
        out.append(contentsOf: #"{"event":"split","page":""#.utf8)
        HexDigits.append(s.page, into: &out)
        out.append(contentsOf: #"","region":"#.utf8)
        JSONValue.quote(s.region, into: &out)
        out.append(contentsOf: #","kind":"#.utf8)
        JSONValue.quote(s.kind.rawValue, into: &out)
        out.append(contentsOf: #","writer":"#.utf8)
        appendDecimal(Int(s.writer), into: &out)
        out.append(contentsOf: #","others":["#.utf8)
        for (i, other) in s.others.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            appendDecimal(Int(other), into: &out)
        }
        out.append(contentsOf: #"],"frame_before":"#.utf8)
        JSONValue.hex(FrameNumber.known(s.frameBefore)).encode(into: &out)
        out.append(contentsOf: #","frame_after":"#.utf8)
        JSONValue.hex(FrameNumber.known(s.frameAfter)).encode(into: &out)
        out.append(contentsOf: #","huge_page":"#.utf8)
        out.append(contentsOf: (s.hugePage.map { $0 ? "true" : "false" } ?? "null").utf8)
        let parts = instructionParts(w, frames: s.backtrace)
        out.append(contentsOf: parts.beforeAddress)
        HexDigits.append(w.address, into: &out)
        out.append(contentsOf: parts.beforeRangeAddress)
        HexDigits.append(w.address, into: &out)
        out.append(contentsOf: parts.beforeStack)
        appendDecimal(stack, into: &out)
        out.append(contentsOf: #","note":null,"engine":"#.utf8)
        JSONValue.quote(s.engine.rawValue, into: &out)
        out.append(contentsOf: #","time_us":"#.utf8)
        appendDecimal(elapsed(), into: &out)
        out.append(contentsOf: "}\n".utf8)
        return true
    }

    /// A drop event's lines (one per page) appended as bytes: the same text `encode` writes.
    public func encodeDropLines(_ d: Drop, into out: inout [UInt8]) {
        var common: [UInt8] = Array(#"{"event":"drop","pid":"#.utf8)
        appendDecimal(Int(d.pid), into: &common)
        common.append(contentsOf: #","page":""#.utf8)
        var tail: [UInt8] = Array(#","reason":"#.utf8)
        JSONValue.quote(d.reason, into: &tail)
        tail.append(contentsOf: #","time_us":"#.utf8)
        appendDecimal(elapsed(), into: &tail)
        tail.append(contentsOf: "}\n".utf8)
        for p in d.pages {
            out.append(contentsOf: common)
            HexDigits.append(p.page, into: &out)
            out.append(contentsOf: #"","region":"#.utf8)
            JSONValue.quote(p.region, into: &out)
            out.append(contentsOf: #","frame":"#.utf8)
            JSONValue.hex(FrameNumber.known(p.frame)).encode(into: &out)
            out.append(contentsOf: tail)
        }
    }

    /// The fields of an instruction's splits that do not change from split to split, cut
    /// around the address written (twice: `address` and `ranges`) and the stack id.
    private var instructionFields: [UInt64: (write: InstructionWrite, top: BacktraceFrame?, parts: InstructionParts)] = [:]

    private struct InstructionParts {
        let beforeAddress: [UInt8]
        let beforeRangeAddress: [UInt8]
        let beforeStack: [UInt8]
    }

    /// The last instruction's parts, recognised without copying what it was keyed by (a copy
    /// of the write and frame #0 costs a retain and release of each of their strings, per
    /// split): the same address, size, text and bytes, from the same backtrace array (the
    /// symbolizer hands a loop's splits one), so the same frame #0.
    private var lastPartsIP: UInt64 = 0
    private var lastPartsSize = -1
    private var lastPartsFrames: [BacktraceFrame] = []
    private var lastPartsText = ""
    private var lastPartsBytes: [UInt8] = []
    private var lastParts: InstructionParts?

    private mutating func instructionParts(_ w: InstructionWrite, frames: [BacktraceFrame]) -> InstructionParts {
        if let parts = lastParts, w.ip == lastPartsIP, w.size == lastPartsSize, sameStorage(frames, lastPartsFrames),
           w.text == lastPartsText, w.bytes == lastPartsBytes {
            return parts
        }
        let parts = instructionParts(w, top: frames.first)
        (lastPartsIP, lastPartsSize, lastPartsFrames, lastPartsText, lastPartsBytes) = (w.ip, w.size, frames, w.text, w.bytes)
        lastParts = parts
        return parts
    }

    private mutating func instructionParts(_ w: InstructionWrite, top: BacktraceFrame?) -> InstructionParts {
        if let hit = instructionFields[w.ip], hit.write.text == w.text, hit.write.size == w.size, hit.write.bytes == w.bytes, hit.top == top {
            return hit.parts
        }
        func encoded(_ fields: [(String, JSONValue)]) -> [UInt8] {
            var out: [UInt8] = []
            for (key, value) in fields {
                out.append(UInt8(ascii: ","))
                JSONValue.quote(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.encode(into: &out)
            }
            return out
        }
        let symbol: JSONValue = top?.symbol.map { .string(symbolWithOffset($0, top?.offset)) } ?? .null
        let parts = InstructionParts(
            beforeAddress: encoded([("cause", .string("instruction")), ("detail", .null), ("ip", .hex(w.ip)), ("instruction", .string(w.text)),
                                    ("bytes", .string(formats.bytesText(w.ip, w.bytes)))]) + Array(#","address":""#.utf8),
            beforeRangeAddress: Array(#"""#.utf8) + encoded([("size", .int(w.size))]) + Array(#","ranges":[{"address":""#.utf8),
            beforeStack: Array(#"","#.utf8) + Array(#""size":"#.utf8) + Array(String(w.size).utf8) + Array("}]".utf8)
                + encoded([("syscall", .null), ("syscall_line", .null), ("clone_flag", .null), ("symbol", symbol), ("source", .string(top?.source))])
                + Array(#","stack":"#.utf8))
        if instructionFields.count < 4096 { instructionFields[w.ip] = (w, top, parts) }
        return parts
    }

    /// The id of a backtrace; a new one is first written as a `stack` event.
    private mutating func stackID(_ frames: [BacktraceFrame], _ emit: (String, [(String, JSONValue)]) -> Void) -> Int {
        guard !frames.isEmpty else { return 0 }
        if let last = lastStack, sameStorage(last.frames, frames) { return last.id }
        let key = frames.map(\.ip)
        if let hit = stackIDs[key]?.first(where: { $0.frames == frames }) {
            lastStack = hit
            return hit.id
        }
        let id = nextStackID
        nextStackID += 1
        stackIDs[key, default: []].append((frames, id))
        lastStack = (frames, id)
        emit("stack", [("id", .int(id)), ("frames", .array(frames.map(Self.frameJSON)))])
        return id
    }

    /// A `process` event the first time a pid is named: its executable and its name as ps
    /// shows it (comm: redis-server runs /usr/bin/redis-check-rdb), for "prog pid N".
    private mutating func nameProgram(_ pid: pid_t, _ emit: (String, [(String, JSONValue)]) -> Void) {
        guard let (path, comm) = firstSight(of: pid) else { return }
        emit("process", [("pid", .int32(pid)), ("program", .string(path)), ("name", .string(comm))])
    }

    /// The program and name of a pid seen for the first time (its `process` event); nil
    /// after the first time, or when the pid is gone.
    mutating func firstSight(of pid: pid_t) -> (program: String, name: String?)? {
        guard programsSeen.insert(pid).inserted else { return nil }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard let n = try? systemCall("readlink", pid: pid, { readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1) }) else { return nil }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let comm = (try? readWholeFile("/proc/\(pid)/comm", pid: pid)).map { String(decoding: $0.prefix { $0 != 10 }, as: UTF8.self) }
        return (path, comm)
    }

    /// Microseconds since this encoder was made (the start of the trace).
    func elapsed() -> Int { Int(Self.monotonicMicroseconds() - start) }

    static func monotonicMicroseconds() -> Int64 {
        var now = timespec()
        _ = try? systemCall("clock_gettime") { clock_gettime(CLOCK_MONOTONIC, &now) }
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }

    /// A split's fields; with `stack`, the backtrace is that `stack` event's id instead of inline.
    static func json(_ s: Split, formats: FrameFormats? = nil, stack: Int? = nil) -> [(String, JSONValue)] {
        var ip: JSONValue = .null, instruction: JSONValue = .null, address: JSONValue = .null, size: JSONValue = .null
        var bytes: JSONValue = .null, syscall: JSONValue = .null, cloneFlag: JSONValue = .null, detail: JSONValue = .null
        var note: JSONValue = .null, syscallLine: JSONValue = .null, ranges: JSONValue = .null
        switch s.cause {
        case .instruction(let w):
            // Each run of bytes written on the page (one, unless lanes were masked off).
            ranges = .array((w.ranges.isEmpty ? [WriteRange(address: w.address, size: w.size)] : w.ranges).map {
                .object([("address", .hex($0.address)), ("size", .int($0.size))])
            })
            ip = .hex(w.ip)
            instruction = .string(w.text)
            address = .hex(w.address)
            size = .int(w.size)
            bytes = .string(formats?.bytesText(w.ip, w.bytes) ?? CowtraceCore.bytesText(w.bytes))
        case .syscall(let call):
            syscall = .string(call.name)
            syscallLine = .string(call.line)
        case .clone(let store, let pointer):
            cloneFlag = .string(store.rawValue)
            address = .hex(pointer)
            size = .int(4)
        case .kernel(let store): detail = .string(store?.rawValue)
        case .unknown(let n): note = .string(n)
        }
        let top = s.backtrace.first
        let symbol: JSONValue = top?.symbol.map { .string(symbolWithOffset($0, top?.offset)) } ?? .null
        return [
            ("page", .hex(s.page)), ("region", .string(s.region)), ("kind", .string(s.kind.rawValue)),
            ("writer", .int32(s.writer)), ("others", .array(s.others.map { .int32($0) })),
            ("frame_before", .hex(FrameNumber.known(s.frameBefore))), ("frame_after", .hex(FrameNumber.known(s.frameAfter))),
            ("huge_page", s.hugePage.map { .bool($0) } ?? .null),
            ("cause", .string(s.cause.name)), ("detail", detail), ("ip", ip), ("instruction", instruction),
            ("bytes", bytes), ("address", address), ("size", size), ("ranges", ranges), ("syscall", syscall),
            ("syscall_line", syscallLine), ("clone_flag", cloneFlag),
            ("symbol", symbol), ("source", .string(top?.source)),
            stack.map { ("stack", .int($0)) } ?? ("backtrace", formats?.backtraceJSON(s.backtrace) ?? .array(s.backtrace.map(frameJSON))),
            ("note", note), ("engine", .string(s.engine.rawValue)),
        ]
    }

    static func frameJSON(_ f: BacktraceFrame) -> JSONValue {
        .object([("ip", .hex(f.ip)), ("symbol", .string(f.symbol)), ("offset", f.offset.map { .int(Int64($0)) } ?? .null),
                 ("module", .string(f.module)), ("module_offset", .hex(f.moduleOffset)), ("source", .string(f.source))])
    }
}
