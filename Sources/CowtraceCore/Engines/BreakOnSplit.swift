import CCowtrace
import Glibc

/// `--break-on-split[=N]`: at the Nth split every traced process is stopped, a report is
/// printed (registers, disassembly around the store, the bytes written and the old bytes
/// still in the other process, the backtrace, the page's frame in every process), and
/// `--on-break` decides what happens next.
public final class BreakOnSplit {
    public enum Action: String, Sendable { case stop, kill, detach, `continue` }

    let count: Int
    let action: Action
    let disassembler: Disassembler
    private var seen = 0
    private var pending: Split?
    public private(set) var done = false

    public init(count: Int, action: Action, disassembler: Disassembler) {
        self.count = count
        self.action = action
        self.disassembler = disassembler
    }

    func splitReported(_ split: Split) {
        guard !done else { return }
        seen += 1
        if seen == count { pending = split }
    }

    /// Called by the engine with a stopped tracee once its bookkeeping is done.
    func fireIfDue(_ current: Tracee, tracer: Tracer, completeStore: Bool) {
        guard let split = pending else { return }
        pending = nil
        done = true
        if completeStore, case .instruction = split.cause, let writer = tracer.tracees.values.first(where: { $0.tgid == split.writer && $0.tid == current.tid }) {
            // The fault engine stops at the fault, before the store: let it happen.
            _ = try? Ptrace.resume(writer.tid, .singleStep)
            var status: Int32 = 0
            _ = waitpid(writer.tid, &status, cow_WALL)
        }
        if action != .continue { tracer.interruptAll(except: current.tid) }
        report(split, current: current, tracer: tracer)
        switch action {
        case .continue:
            break
        case .kill:
            tracer.log.message("break: killing every traced process (--on-break kill)")
            tracer.killAll()
        case .detach:
            tracer.log.message("break: detaching; the processes run on (--on-break detach)")
            tracer.detachStopped(signal: 0)
        case .stop:
            let pids = Set(tracer.tracees.values.map(\.tgid)).sorted()
            tracer.detachStopped(signal: SIGSTOP)
            let list = pids.map(String.init).joined(separator: " ")
            tracer.log.message("break: left stopped (SIGSTOP): \(list)")
            tracer.log.message("  inspect: cowtrace paddr \(split.writer) \(hex(split.page))   cowtrace pages \(list)")
            tracer.log.message("  debug:   gdb -p \(split.writer)")
            tracer.log.message("  resume:  kill -CONT \(list)")
        }
    }

    private func report(_ split: Split, current: Tracee, tracer: Tracer) {
        let log = tracer.log
        log.message("break at split \(count): \(CowReporter.describe(split))")
        let writerTid = tracer.tracees.values.first { $0.tgid == split.writer }?.tid ?? split.writer
        if let regs = try? Ptrace.registers(writerTid) {
            let r: [(String, UInt64)] = [("rip", UInt64(regs.rip)), ("rsp", UInt64(regs.rsp)), ("rbp", UInt64(regs.rbp)),
                                         ("rax", UInt64(regs.rax)), ("rbx", UInt64(regs.rbx)), ("rcx", UInt64(regs.rcx)),
                                         ("rdx", UInt64(regs.rdx)), ("rsi", UInt64(regs.rsi)), ("rdi", UInt64(regs.rdi)),
                                         ("r8", UInt64(regs.r8)), ("r9", UInt64(regs.r9)), ("r10", UInt64(regs.r10)),
                                         ("r11", UInt64(regs.r11)), ("r12", UInt64(regs.r12)), ("r13", UInt64(regs.r13)),
                                         ("r14", UInt64(regs.r14)), ("r15", UInt64(regs.r15)), ("eflags", UInt64(regs.eflags))]
            log.plain("  registers of \(writerTid) now:")
            for row in stride(from: 0, to: r.count, by: 6) {
                log.plain("    " + r[row..<min(row + 6, r.count)].map { "\($0.0.leftPadded(6, with: " ")) \(hex($0.1))" }.joined(separator: "  "))
            }
        }
        if case .instruction(let w) = split.cause {
            log.plain("  disassembly:")
            let memory = TraceeMemory(pid: split.writer)
            let start = split.backtrace.first?.offset.map { $0 <= 64 ? w.ip - $0 : w.ip - 32 } ?? w.ip
            var lines: [String] = []
            var address = start
            var synced = start == w.ip || split.backtrace.first?.offset != nil
            while address <= w.ip + 24, let bytes = memory.read(address, count: 16), let insn = disassembler.decode(bytes, at: address) {
                if address == w.ip { synced = true }
                let mark = address == w.ip ? "=>" : "  "
                if synced { lines.append("  \(mark) \(hex(address))  \(insn.text)") }
                address += UInt64(insn.length)
            }
            for line in lines.suffix(9) { log.plain(line) }
            let newBytes = TraceeMemory(pid: split.writer).read(w.address, count: w.size) ?? []
            let other = split.others.first
            let oldBytes = other.flatMap { TraceeMemory(pid: $0).read(w.address, count: w.size) } ?? []
            log.plain("  written: \(w.size) bytes at \(hex(w.address)): new \(Self.value(newBytes)) in \(split.writer)" +
                      (other.map { ", old \(Self.value(oldBytes)) still in \($0) (frame \(hex(split.frameBefore)))" } ?? ""))
        }
        log.plain("  page \(hex(split.page)) in every traced process:")
        for pid in Set(tracer.tracees.values.map(\.tgid)).sorted() {
            if let info = try? PageInspector.describe(pid: pid, addresses: [split.page]).first {
                log.plain("    \(pid): \(info.text)")
            }
        }
    }

    /// Little-endian value for up to 8 bytes, else the bytes in hex.
    static func value(_ bytes: [UInt8]) -> String {
        guard !bytes.isEmpty else { return "?" }
        if bytes.count <= 8 {
            var v: UInt64 = 0
            for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return hex(v)
        }
        return bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ")
    }
}
