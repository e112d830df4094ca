import Glibc

/// Whether two arrays share one buffer (then they are equal without comparing elements).
func sameStorage<T>(_ a: [T], _ b: [T]) -> Bool {
    a.count == b.count && a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.baseAddress == y.baseAddress } }
}

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

    /// The last backtrace seen and whether it had been printed before: a loop's splits carry
    /// the very same array (the symbolizer hands out one per stack), recognised by identity.
    private var lastStack: [BacktraceFrame] = []

    private func firstPrinting(_ frames: [BacktraceFrame]) -> Bool {
        if sameStorage(frames, lastStack) { return false }
        let key = frames.map(\.ip)
        lastStack = frames
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
            let formats = formats
            log.line(tid: split.writer, split) { split, out in Self.describe(split, formats: formats, repeated: repeated, into: &out) }
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
        var out: [UInt8] = []
        describe(s, formats: formats, repeated: repeated, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The same, appended as bytes (the text log's hot path: a split per page copied). What
    /// a loop repeats (the instruction and its frame, the backtrace) comes from `formats`.
    static func describe(_ s: Split, formats: FrameFormats?, repeated: Bool, into out: inout [UInt8]) {
        out.append(literal: "cow: split ")
        HexDigits.append(s.page, into: &out)
        out.append(UInt8(ascii: " "))
        out.append(utf8: s.region)
        out.append(literal: " (")
        out.append(utf8: s.kind.rawValue)
        if s.hugePage == true { out.append(literal: ", 4 KiB of a huge page") }
        out.append(UInt8(ascii: ")"))
        switch s.cause {
        case .instruction(let w):
            if let formats {
                formats.appendInstructionText(w, frames: s.backtrace, into: &out)
            } else {
                out.append(contentsOf: instructionText(w, top: s.backtrace.first).utf8)
            }
            HexDigits.append(w.address, into: &out)
            if !w.ranges.isEmpty {
                out.append(contentsOf: (" in \(w.ranges.count) runs: " + w.ranges.map { "\(hex($0.address))+\($0.size)" }.joined(separator: " ")).utf8)
            }
            out.append(UInt8(ascii: ")"))
        case .syscall(let call):
            out.append(contentsOf: " in \(call.name): the kernel wrote it during the syscall".utf8)
        case .clone(let store, let pointer):
            out.append(contentsOf: " in clone: kernel stored the \(store.target) \(hex(pointer)) (\(store.rawValue))".utf8)
        case .kernel(let store):
            switch store {
            case .rseq: out.append(contentsOf: " by the kernel: rseq area update on return to user mode (rseq)".utf8)
            case .signalFrame: out.append(contentsOf: " by the kernel (signal frame)".utf8)
            case nil: out.append(contentsOf: " by the kernel, outside any syscall".utf8)
            }
        case .unknown(let note):
            out.append(contentsOf: ", cause unknown: \(note)".utf8)
        }
        let before = FrameNumber.known(s.frameBefore), after = FrameNumber.known(s.frameAfter)
        if before == nil && after == nil {
            out.append(literal: "; frames unknown")
        } else {
            out.append(literal: "; frame ")
            appendFrame(before, into: &out)
            out.append(literal: " -> ")
            appendFrame(after, into: &out)
        }
        if repeated {
            if let formats {
                formats.appendRepeatedText(s.backtrace, into: &out)
            } else {
                out.append(contentsOf: repeatedText(s.backtrace).utf8)
            }
        } else if let formats {
            out.append(utf8: formats.backtraceText(s.backtrace, sourceText: s.sourceText))
        } else {
            out.append(contentsOf: backtraceText(s.backtrace, sourceText: s.sourceText).utf8)
        }
    }

    private static func appendFrame(_ known: UInt64?, into out: inout [UInt8]) {
        if let known { HexDigits.append(known, into: &out) } else { out.append(literal: "unknown") }
    }

    /// " by 0x… <symbol+off> file:line  text  (N bytes at ": what an instruction's splits
    /// share, up to the address written.
    static func instructionText(_ w: InstructionWrite, top: BacktraceFrame?) -> String {
        var out = " by \(hex(w.ip))"
        if let top {
            if let symbol = top.symbol {
                out += " <\(symbol)\(top.offset.map { $0 == 0 ? "" : "+\($0)" } ?? "")>"
            } else if let module = top.module, let offset = top.moduleOffset {
                out += " <\(module.split(separator: "/").last ?? "")+\(hex(offset))>"
            }
            if let source = top.source { out += " \(source)" }
        }
        return out + "  \(w.text)  (\(w.size) byte\(w.size == 1 ? "" : "s") at "
    }

    /// A backtrace printed in full before: "#0-#N as above: a <- b <- c" on a line of its own.
    static func repeatedText(_ frames: [BacktraceFrame]) -> String {
        "\n             #0-#\(frames.count - 1) as above: " + frames.map(shortFrameName).joined(separator: " <- ")
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
