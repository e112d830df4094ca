import Glibc

/// Turns cow events into annotation lines, JSON objects and the end-of-run summary.
public final class CowReporter {
    private let log: SyscallLog
    private let events: JSONEventLog?
    private let summaryOnly: Bool
    public private(set) var summary = CowSummary()
    /// A loop copying page after page repeats the same frames: format each once.
    private let formats = FrameFormats()

    public init(log: SyscallLog, events: JSONEventLog?, summaryOnly: Bool) {
        self.log = log
        self.events = events
        self.summaryOnly = summaryOnly
        // Whatever else is logged comes after the splits already found.
        log.beforeWrite = { [unowned self] in self.flushPending() }
    }

    /// Splits counted but not yet written: formatted once the tracees run again
    /// (`flushPending`), so a stopped tracee does not wait for its report's text and JSON.
    private var pending: [(split: Split, confirm: (() -> Bool)?)] = []

    /// `confirm`, for a split, runs before it is written (the tracees running again) and may
    /// withdraw it.
    public func report(_ event: CowEvent, confirm: (() -> Bool)? = nil) {
        if case .split(let split) = event {
            pending.append((split, confirm))
            return
        }
        flushPending()
        summary.add(event)
        write(event)
    }

    /// Writes the splits reported since the last call, in order.
    public func flushPending() {
        guard !pending.isEmpty else { return }
        let splits = pending
        pending.removeAll(keepingCapacity: true)
        for (split, confirm) in splits where confirm?() ?? true {
            summary.add(.split(split))
            write(.split(split))
        }
    }

    private func write(_ event: CowEvent) {
        switch event {
        case let .shared(parent, child, call, anon, file, zero):
            let total = anon + file + zero
            text(parent, annotation: true, "cow: \(total) page\(total == 1 ? "" : "s") now shared with \(child) (anon \(anon), file \(file), zero \(zero))")
            _ = call
        case .split(let split):
            text(split.writer, annotation: false, Self.describe(split, formats: formats))
            events?.emit("split", Self.json(split, formats: formats))
        case let .reuse(pid, page, region, frame, ip):
            text(pid, annotation: false, "cow: reuse \(hex(page)) \(region): last holder wrote its own frame \(Self.frameText(frame)), no copy")
            events?.emit("reuse", [("pid", .int32(pid)), ("page", .hex(page)), ("region", .string(region)),
                                   ("frame", .hex(FrameNumber.known(frame))), ("ip", .hex(ip))])
        case let .drop(pid, pages, reason):
            guard !pages.isEmpty else { return }
            text(pid, annotation: true, "cow: \(pid) dropped \(pages.count) shared page\(pages.count == 1 ? "" : "s") (\(reason))")
            for p in pages {
                events?.emit("drop", [("pid", .int32(pid)), ("page", .hex(p.page)), ("region", .string(p.region)),
                                      ("frame", .hex(FrameNumber.known(p.frame))), ("reason", .string(reason))])
            }
        }
    }

    func logMessage(_ text: String) {
        flushPending()
        log.message(text)
    }

    private func text(_ pid: pid_t, annotation: Bool, _ line: String) {
        guard !summaryOnly else { return }
        if annotation { log.annotation(tid: pid, line) } else { log.line(tid: pid, line) }
    }

    static func describe(_ s: Split, formats: FrameFormats? = nil) -> String {
        var out = "cow: split \(hex(s.page)) \(s.region) (\(s.kind.rawValue))"
        switch s.cause {
        case .instruction(let w):
            out += " by \(hex(w.ip))"
            if let top = s.backtrace.first {
                if let symbol = top.symbol {
                    out += " <\(symbol)\(top.offset.map { $0 == 0 ? "" : "+\($0)" } ?? "")>"
                } else if let module = top.module, let offset = top.moduleOffset {
                    out += " <\(module.split(separator: "/").last ?? "")+\(hex(offset))>"
                }
            }
            if let source = s.backtrace.first?.source { out += " \(source)" }
            out += "  \(w.text)  (\(w.size) byte\(w.size == 1 ? "" : "s") at \(hex(w.address))"
            if !w.ranges.isEmpty { out += " in \(w.ranges.count) runs: " + w.ranges.map { "\(hex($0.address))+\($0.size)" }.joined(separator: " ") }
            out += ")"
        case .syscall(let name, _):
            out += " in \(name): the kernel wrote it during the syscall"
        case .clone(let flag, let pointer):
            let what = flag == "CLONE_CHILD_SETTID" ? "child TID at child_tidptr" : "child TID at parent_tid"
            out += " in clone: kernel stored the \(what) \(hex(pointer)) (\(flag))"
        case .kernel(let detail):
            switch detail {
            case "rseq": out += " by the kernel: rseq area update on return to user mode (rseq)"
            case let d?: out += " by the kernel (\(d))"
            case nil: out += " by the kernel, outside any syscall"
            }
        case .unknown(let note):
            out += ", cause unknown: \(note)"
        }
        if FrameNumber.known(s.frameBefore) == nil && FrameNumber.known(s.frameAfter) == nil {
            out += "; frames unknown"
        } else {
            out += "; frame \(frameText(s.frameBefore)) -> \(frameText(s.frameAfter))"
        }
        out += formats?.backtraceText(s.backtrace, sourceText: s.sourceText) ?? backtraceText(s.backtrace, sourceText: s.sourceText)
        return out
    }

    /// The backtrace lines under a split, each starting with a newline.
    static func backtraceText(_ frames: [BacktraceFrame], sourceText: String?) -> String {
        var out = ""
        for (i, frame) in frames.enumerated() {
            out += "\n             " + frameLine(i, frame)
            if i == 0, let text = sourceText { out += "\n                 \(text)" }
        }
        return out
    }

    /// A frame number, or "unknown" where pagemap hides it.
    static func frameText(_ frame: UInt64) -> String { FrameNumber.known(frame).map(hex) ?? "unknown" }

    /// "#I 0x… symbol+0xOFF (module) file:line", as in the split annotations.
    static func frameLine(_ i: Int, _ frame: BacktraceFrame) -> String {
        "#\(i) " + frameDescription(frame)
    }

    /// A frame's line without its number.
    static func frameDescription(_ frame: BacktraceFrame) -> String {
        var out = hex(frame.ip)
        if let symbol = frame.symbol {
            out += " \(symbol)\(frame.offset.map { $0 == 0 ? "" : "+0x" + String($0, radix: 16) } ?? "")"
        } else {
            out += " ??"  // stripped or generated code: no symbol
        }
        if let module = frame.module {
            out += " (\(module)\(frame.symbol == nil ? frame.moduleOffset.map { "+" + hex($0) } ?? "" : ""))"
        } else {
            out += " (no module: anonymous or JIT code)"
        }
        if let source = frame.source { out += " \(source)" }
        return out
    }

    static func json(_ s: Split, formats: FrameFormats? = nil) -> [(String, JSONValue)] {
        var ip: JSONValue = .null, instruction: JSONValue = .null, address: JSONValue = .null, size: JSONValue = .null
        var bytes: JSONValue = .null, syscall: JSONValue = .null, cloneFlag: JSONValue = .null, detail: JSONValue = .null
        var note: JSONValue = .null, ranges: JSONValue = .null
        switch s.cause {
        case .instruction(let w):
            ranges = .array((w.ranges.isEmpty ? [WriteRange(address: w.address, size: w.size)] : w.ranges).map {
                .object([("address", .hex($0.address)), ("size", .int($0.size))])
            })
            ip = .hex(w.ip)
            instruction = .string(w.text)
            address = .hex(w.address)
            size = .int(w.size)
            bytes = .string(formats?.bytesText(w.ip, w.bytes) ?? bytesText(w.bytes))
        case .syscall(let name, _): syscall = .string(name)
        case .clone(let flag, let pointer):
            cloneFlag = .string(flag)
            address = .hex(pointer)
            size = .int(4)
        case .kernel(let d): detail = .string(d)
        case .unknown(let n): note = .string(n)
        }
        let top = s.backtrace.first
        let symbol: JSONValue = top?.symbol.map { sym in
            .string(sym + (top?.offset.map { $0 == 0 ? "" : "+0x" + String($0, radix: 16) } ?? ""))
        } ?? .null
        return [
            ("page", .hex(s.page)), ("region", .string(s.region)), ("kind", .string(s.kind.rawValue)),
            ("writer", .int32(s.writer)), ("others", .array(s.others.map { .int32($0) })),
            ("frame_before", .hex(FrameNumber.known(s.frameBefore))), ("frame_after", .hex(FrameNumber.known(s.frameAfter))),
            ("cause", .string(s.cause.name)), ("detail", detail), ("ip", ip), ("instruction", instruction),
            ("bytes", bytes), ("address", address), ("size", size), ("ranges", ranges), ("syscall", syscall), ("clone_flag", cloneFlag),
            ("symbol", symbol), ("source", .string(top?.source)),
            ("backtrace", formats?.backtraceJSON(s.backtrace) ?? .array(s.backtrace.map(frameJSON))),
            ("note", note), ("engine", .string(s.engine)),
        ]
    }

    static func bytesText(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ")
    }

    static func frameJSON(_ f: BacktraceFrame) -> JSONValue {
        .object([("ip", .hex(f.ip)), ("symbol", .string(f.symbol)), ("offset", f.offset.map { .int(Int64($0)) } ?? .null),
                 ("module", .string(f.module)), ("module_offset", .hex(f.moduleOffset)), ("source", .string(f.source))])
    }

    /// Prints the summary to the log and the JSON stream.
    public func finish(engine: String, steps: Int, stillShared: Int, faults: Int? = nil) {
        flushPending()
        summary.steps = steps
        summary.faults = faults
        summary.stillShared = stillShared
        summary.engine = engine
        for line in summary.textLines() { log.plain(line) }
        events?.emit("summary", summary.json())
    }
}

func hex(_ value: UInt64) -> String { HexDigits.string(value) }

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

extension CowReporter {
    /// A remark in the log (not an event): "cowtrace: …".
    public func note(_ pid: pid_t, _ text: String) { logMessage(text) }
}

/// Backtraces and instruction bytes already formatted once: a loop copying page after page
/// repeats them split after split. Keyed by addresses (cheap to hash), checked for equality.
final class FrameFormats {
    private var texts: [[UInt64]: (frames: [BacktraceFrame], source: String?, text: String)] = [:]
    private var objects: [[UInt64]: (frames: [BacktraceFrame], json: JSONValue)] = [:]
    private var bytes: [UInt64: (bytes: [UInt8], text: String)] = [:]
    private let limit = 4096

    func backtraceText(_ frames: [BacktraceFrame], sourceText: String?) -> String {
        let key = frames.map(\.ip)
        if let hit = texts[key], hit.source == sourceText, hit.frames == frames { return hit.text }
        let text = CowReporter.backtraceText(frames, sourceText: sourceText)
        if texts.count < limit { texts[key] = (frames, sourceText, text) }
        return text
    }

    func backtraceJSON(_ frames: [BacktraceFrame]) -> JSONValue {
        let key = frames.map(\.ip)
        if let hit = objects[key], hit.frames == frames { return hit.json }
        var encoded: [UInt8] = []
        JSONValue.array(frames.map(CowReporter.frameJSON)).encode(into: &encoded)
        let json = JSONValue.encodedJSON(encoded)
        if objects.count < limit { objects[key] = (frames, json) }
        return json
    }

    func bytesText(_ ip: UInt64, _ instruction: [UInt8]) -> String {
        if let hit = bytes[ip], hit.bytes == instruction { return hit.text }
        let text = CowReporter.bytesText(instruction)
        if bytes.count < limit { bytes[ip] = (instruction, text) }
        return text
    }
}
