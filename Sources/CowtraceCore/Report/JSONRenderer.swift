/// `--json`: one object per event and line (SPEC "JSON events").
public final class JSONRenderer: EventRenderer {
    private let out: JSONEventLog
    private let formats = FrameFormats()

    public init(sink: OutputSink) { self.out = JSONEventLog(sink: sink) }

    public func render(_ event: TraceEvent, tracees: Int) {
        switch event {
        case .syscall(let r):
            var fields: [(String, JSONValue)] = [("pid", .int32(r.tid)), ("name", .string(r.name)), ("ret", r.ret.map { .int($0) } ?? .null)]
            if let errno = r.errno { fields.append(("errno", .string(errno))) }
            fields.append(("text", .string(r.line)))
            out.emit("syscall", fields)
        case .clone(let c):
            out.emit("clone", [
                ("pid", .int32(c.pid)), ("child", .int32(c.child)), ("syscall", .string(c.syscall)),
                ("flags", .array(c.flags.map { .string($0) })), ("exit_signal", .string(c.exitSignal)),
                ("child_tidptr", .hex(c.childTidPointer)), ("parent_tid", .hex(c.parentTid)),
                ("shares_memory", .bool(c.sharesMemory)), ("shared_pages", .int(c.sharedPages)),
            ])
        case .split(let split):
            out.emit("split", Self.json(split, formats: formats))
        case .reuse(let r):
            out.emit("reuse", [("pid", .int32(r.pid)), ("page", .hex(r.page)), ("region", .string(r.region)),
                               ("frame", .hex(FrameNumber.known(r.frame))), ("ip", .hex(r.ip))])
        case .drop(let d):
            for p in d.pages {
                out.emit("drop", [("pid", .int32(d.pid)), ("page", .hex(p.page)), ("region", .string(p.region)),
                                  ("frame", .hex(FrameNumber.known(p.frame))), ("reason", .string(d.reason))])
            }
        case .exit(let e):
            guard e.isLeader else { return }
            switch e.how {
            case .exited(let code): out.emit("exit", [("pid", .int32(e.tid)), ("status", .int32(code)), ("signal", .null)])
            case .killed(let signal, _): out.emit("exit", [("pid", .int32(e.tid)), ("status", .null), ("signal", .string(SignalNames.name(signal)))])
            }
        case .note(let text):
            out.emit("note", [("text", .string(text))])
        case .summary(let summary):
            out.emit("summary", summary.json())
        case .syscallEntry, .shared, .signal, .text:
            break
        }
    }

    public func flush() { out.flush() }

    static func json(_ s: Split, formats: FrameFormats? = nil) -> [(String, JSONValue)] {
        var ip: JSONValue = .null, instruction: JSONValue = .null, address: JSONValue = .null, size: JSONValue = .null
        var bytes: JSONValue = .null, syscall: JSONValue = .null, cloneFlag: JSONValue = .null, detail: JSONValue = .null
        var note: JSONValue = .null, syscallLine: JSONValue = .null
        switch s.cause {
        case .instruction(let w):
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
            ("bytes", bytes), ("address", address), ("size", size), ("syscall", syscall),
            ("syscall_line", syscallLine), ("clone_flag", cloneFlag),
            ("symbol", symbol), ("source", .string(top?.source)),
            ("backtrace", formats?.backtraceJSON(s.backtrace) ?? .array(s.backtrace.map(frameJSON))),
            ("note", note), ("engine", .string(s.engine.rawValue)),
        ]
    }

    static func frameJSON(_ f: BacktraceFrame) -> JSONValue {
        .object([("ip", .hex(f.ip)), ("symbol", .string(f.symbol)), ("offset", f.offset.map { .int(Int64($0)) } ?? .null),
                 ("module", .string(f.module)), ("module_offset", .hex(f.moduleOffset)), ("source", .string(f.source))])
    }

}
