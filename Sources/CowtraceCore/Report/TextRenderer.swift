import Glibc

/// The strace-style text log (stderr or -o): syscall lines laid out by `SyscallLog`, the
/// cow annotations under them, splits with their backtraces, and the summary.
public final class TextRenderer: EventRenderer {
    /// How much of the stream is shown: everything, -q (no exits or signals), or only the
    /// summary (and cowtrace's own notes).
    public enum Detail: Sendable { case full, quiet, summaryOnly }

    private let log: SyscallLog
    private let detail: Detail
    /// A loop copying page after page repeats the same frames: format each once.
    private let formats = FrameFormats()
    /// Backtraces printed in full once (the next time they are one line), keyed by addresses
    /// and checked for equality: cheaper than hashing every frame's strings.
    private var printedStacks: [[UInt64]: [[BacktraceFrame]]] = [:]

    private func firstPrinting(_ frames: [BacktraceFrame]) -> Bool {
        let key = frames.map(\.ip)
        if printedStacks[key]?.contains(frames) == true { return false }
        printedStacks[key, default: []].append(frames)
        return true
    }

    public init(sink: OutputSink, detail: Detail) {
        self.log = SyscallLog(sink: sink)
        self.detail = detail
    }

    public func render(_ event: TraceEvent, tracees: Int) {
        log.traceeCount = tracees
        switch event {
        case .note(let text):
            log.message(text)
            return
        case .summary(let summary):
            for line in summary.textLines() { log.plain(line) }
            return
        default:
            guard detail != .summaryOnly else { return }
        }
        switch event {
        case let .syscallEntry(tid, name, arguments):
            log.begin(tid: tid, name: name, entry: arguments)
        case .syscall(let r):
            log.finish(tid: r.tid, name: r.name, exit: r.exitText, result: r.result)
        case .shared(let s):
            log.annotation(tid: s.parent, "cow: \(s.total) page\(s.total == 1 ? "" : "s") now shared with \(s.child) (anon \(s.anon), file \(s.file), zero \(s.zero))")
        case .split(let split):
            let repeated = split.backtrace.count > 1 && !firstPrinting(split.backtrace)
            log.line(tid: split.writer, Self.describe(split, formats: formats, repeated: repeated))
        case .reuse(let r):
            log.line(tid: r.pid, "cow: reuse \(hex(r.page)) \(r.region): last holder wrote its own frame \(Self.frameText(r.frame)), no copy")
        case .drop(let d):
            guard !d.pages.isEmpty else { return }
            log.annotation(tid: d.pid, "cow: \(d.pid) dropped \(d.pages.count) shared page\(d.pages.count == 1 ? "" : "s") (\(d.reason))")
        case let .signal(tid, text):
            if detail == .full { log.line(tid: tid, text) }
        case .exit(let e):
            guard detail == .full else { return }
            switch e.how {
            case .exited(let code): log.line(tid: e.tid, "+++ exited with \(code) +++")
            case .killed(let signal, let core): log.line(tid: e.tid, "+++ killed by \(SignalNames.name(signal))\(core ? " (core dumped)" : "") +++")
            }
        case .text(let lines):
            for line in lines { log.plain(line) }
        case .clone, .note, .summary:
            break
        }
    }

    public func flush() { log.flush() }

    /// With `repeated`, a backtrace already printed in full is one line of names: a loop copying
    /// page after page would otherwise repeat the same frames for every page.
    static func describe(_ s: Split, formats: FrameFormats? = nil, repeated: Bool = false) -> String {
        var out = "cow: split \(hex(s.page)) \(s.region) (\(s.kind.rawValue)\(s.hugePage == true ? ", 4 KiB of a huge page" : ""))"
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
        case .syscall(let call):
            out += " in \(call.name): the kernel wrote it during the syscall"
        case .clone(let store, let pointer):
            out += " in clone: kernel stored the \(store.target) \(hex(pointer)) (\(store.rawValue))"
        case .kernel(let store):
            switch store {
            case .rseq: out += " by the kernel: rseq area update on return to user mode (rseq)"
            case .signalFrame: out += " by the kernel (signal frame)"
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
        if repeated {
            out += "\n             #0-#\(s.backtrace.count - 1) as above: " + s.backtrace.map(shortFrameName).joined(separator: " <- ")
        } else {
            out += formats?.backtraceText(s.backtrace, sourceText: s.sourceText) ?? backtraceText(s.backtrace, sourceText: s.sourceText)
        }
        return out
    }

    /// "main+0x24", or "module+0xoffset" without a symbol.
    static func shortFrameName(_ frame: BacktraceFrame) -> String {
        frame.symbol.map { symbolWithOffset($0, frame.offset) } ?? RunLog.functionName(frame)
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
            out += " " + symbolWithOffset(symbol, frame.offset)
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

}
