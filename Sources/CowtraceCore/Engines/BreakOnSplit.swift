import CCowtrace
import Glibc

/// `--break-on-split[=N]`: at the Nth split every traced process is stopped, a report is
/// printed (registers, disassembly around the store, the bytes written and the old bytes
/// still in the other process, the backtrace, the page's frame in every process), and
/// `--on-break` decides what happens next.
public final class BreakOnSplit {
    public enum Action: String, Sendable { case stop, kill, detach, `continue` }

    private(set) var count: Int
    let action: Action
    /// A prompt on the terminal decides instead of `action`.
    let interactive: Bool
    let disassembler: Disassembler
    private var seen = 0
    private var pending: Split?
    public private(set) var done = false

    public init(count: Int, action: Action, interactive: Bool = false, disassembler: Disassembler) {
        self.count = count
        self.action = action
        self.interactive = interactive
        self.disassembler = disassembler
    }

    func splitReported(_ split: Split) {
        guard !done else { return }
        seen += 1
        if seen == count { pending = split }
    }

    /// Breaks again at the next split (the prompt's `continue`).
    func rearm() {
        count = seen + 1
        done = false
    }

    /// Called by the engine with a stopped tracee once its bookkeeping is done.
    func fireIfDue(_ current: Tracee, tracer: Tracer, engine: CowEngine, completeStore: Bool) {
        guard let split = pending else { return }
        pending = nil
        done = true
        engine.tracker.confirmSplits()
        if completeStore, case .instruction = split.cause, let writer = tracer.tracees.values.first(where: { $0.tgid == split.writer && $0.tid == current.tid }) {
            // The fault engine stops at the fault, before the store: let it happen. A second
            // page it copies is reported through the engine's trap; a signal or an exit that
            // comes instead is the loop's to handle.
            if case .stoppedBy(let status) = tracer.stepOnce(writer, ownTrap: { engine.trapped(writer, info: $0, tracer: tracer) }) {
                tracer.stream.note("break: the store did not complete: \(Self.describe(status)) (the loop handles it)")
            }
        }
        if interactive {
            tracer.pauseAll()
            report(split, current: current, tracer: tracer)
            BreakPrompt(split: split, current: current, tracer: tracer, engine: engine, breaker: self).run()
            return
        }
        if action != .continue { tracer.pauseAll() }
        report(split, current: current, tracer: tracer)
        perform(action, split: split, tracer: tracer)
    }

    static func describe(_ status: WaitStatus) -> String {
        switch status {
        case .signalStop(let signal): "\(SignalNames.name(signal)) arrived first"
        case .exited(let code): "the writer exited with \(code)"
        case .killed(let signal, _): "the writer was killed by \(SignalNames.name(signal))"
        default: "another stop came first"
        }
    }

    func perform(_ action: Action, split: Split, tracer: Tracer) {
        switch action {
        case .continue:
            break
        case .kill:
            tracer.stream.note("break: killing every traced process (--on-break kill)")
            tracer.killAll()
        case .detach:
            tracer.stream.note("break: detaching; the processes run on (--on-break detach)")
            tracer.detachStopped(signal: 0)
        case .stop:
            let pids = Set(tracer.tracees.values.map(\.tgid)).sorted()
            tracer.detachStopped(signal: SIGSTOP)
            let list = pids.map(String.init).joined(separator: " ")
            tracer.stream.note("break: left stopped (SIGSTOP): \(list)")
            tracer.stream.note("  inspect: cowtrace paddr \(split.writer) \(hex(split.page))   cowtrace pages \(list)")
            tracer.stream.note("  debug:   gdb -p \(split.writer)")
            tracer.stream.note("  resume:  kill -CONT \(list)")
        }
    }

    private func report(_ split: Split, current: Tracee, tracer: Tracer) {
        tracer.stream.note("break at split \(count): \(TextRenderer.describe(split))")
        var lines: [String] = []
        let writerTid = tracer.tracees.values.first { $0.tgid == split.writer }?.tid ?? split.writer
        if let regs = try? Ptrace.registers(writerTid) {
            lines.append("  registers of \(writerTid) now:")
            for line in Self.registerLines(regs) { lines.append("    " + line) }
        }
        if case .instruction(let w) = split.cause {
            lines.append("  disassembly:")
            for line in disassembly(pid: split.writer, at: w.ip, functionOffset: split.backtrace.first?.offset) { lines.append(line) }
            let newBytes = TraceeMemory(pid: split.writer).read(w.address, count: w.size) ?? []
            let other = split.others.first
            let oldBytes = other.flatMap { TraceeMemory(pid: $0).read(w.address, count: w.size) } ?? []
            lines.append("  written: \(w.size) bytes at \(hex(w.address)): new \(Self.value(newBytes)) in \(split.writer)" +
                      (other.map { ", old \(Self.value(oldBytes)) still in \($0) (frame \(TextRenderer.frameText(split.frameBefore)))" } ?? ""))
        }
        lines.append("  page \(hex(split.page)) in every traced process:")
        for pid in Set(tracer.tracees.values.map(\.tgid)).sorted() {
            if let info = try? PageInspector.describe(pid: pid, addresses: [split.page]).first {
                lines.append("    \(pid): \(info.text)")
            }
        }
        tracer.stream.emit(.text(lines))
    }

    /// Three rows of six, values padded as gdb's `info registers` does.
    static func registerLines(_ regs: Registers) -> [String] {
        let r: [(String, UInt64)] = [("rip", UInt64(regs.rip)), ("rsp", UInt64(regs.rsp)), ("rbp", UInt64(regs.rbp)),
                                     ("rax", UInt64(regs.rax)), ("rbx", UInt64(regs.rbx)), ("rcx", UInt64(regs.rcx)),
                                     ("rdx", UInt64(regs.rdx)), ("rsi", UInt64(regs.rsi)), ("rdi", UInt64(regs.rdi)),
                                     ("r8", UInt64(regs.r8)), ("r9", UInt64(regs.r9)), ("r10", UInt64(regs.r10)),
                                     ("r11", UInt64(regs.r11)), ("r12", UInt64(regs.r12)), ("r13", UInt64(regs.r13)),
                                     ("r14", UInt64(regs.r14)), ("r15", UInt64(regs.r15)), ("eflags", UInt64(regs.eflags))]
        return stride(from: 0, to: r.count, by: 3).map { row in
            r[row..<min(row + 3, r.count)].map { "\($0.0.leftPadded(6, with: " ")) 0x\(String($0.1, radix: 16).leftPadded(16))" }
                .joined(separator: "  ")
        }
    }

    /// Up to nine instructions ending a little after `ip`, `ip` marked: decoding starts at
    /// the function's start when it is near (so it is in sync), else at `ip`.
    func disassembly(pid: pid_t, at ip: UInt64, functionOffset: UInt64?) -> [String] {
        let memory = TraceeMemory(pid: pid)
        let start = functionOffset.map { $0 <= 64 ? ip - $0 : ip - 32 } ?? ip
        var lines: [String] = []
        var address = start
        var synced = start == ip || functionOffset != nil
        while address <= ip + 24, let bytes = memory.read(address, count: 16), let insn = disassembler.decode(bytes, at: address) {
            if address == ip { synced = true }
            let mark = address == ip ? "=>" : "  "
            if synced { lines.append("  \(mark) \(hex(address))  \(insn.text)") }
            address += UInt64(insn.length)
        }
        return Array(lines.suffix(9))
    }

    /// The little-endian word of up to 8 bytes at `offset`.
    static func word(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in bytes[offset..<min(offset + 8, bytes.count)].enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    /// Little-endian value for up to 8 bytes, else the bytes in hex.
    static func value(_ bytes: [UInt8]) -> String {
        guard !bytes.isEmpty else { return "?" }
        if bytes.count <= 8 { return hex(word(bytes, at: 0)) }
        return bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ")
    }
}
