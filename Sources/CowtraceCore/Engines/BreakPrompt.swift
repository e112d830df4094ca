import CCowtrace
import Glibc

/// The prompt at a break when stdin is a terminal: every traced process is stopped; the user
/// looks around (registers, backtrace, memory, shared pages), single-steps the writer, or
/// decides how it ends (continue to the next split, detach, kill, or hand over to gdb).
/// Its own output goes to stderr, whatever `-o` says: it is a conversation.
final class BreakPrompt {
    private let split: Split
    private let tracer: Tracer
    private let engine: CowEngine
    private let breaker: BreakOnSplit
    /// The thread the prompt works on: the writer's, when it is one of ours.
    private let thread: Tracee?

    static let help = """
        commands:
          c, continue        run on to the next split and break there
          s, step            execute one instruction of the writer (its splits are reported)
          bt, backtrace      the writer's backtrace now
          regs               the writer's registers
          x ADDR [N]         N 8-byte words at ADDR in the writer (PID:ADDR for another process)
          pages              the pages still shared, per process
          paddr ADDR         ADDR's frame and flags in every traced process
          detach             let every process run on untraced
          kill               kill every traced process
          gdb                detach, leaving the processes stopped, and run gdb -p on the writer
          stop               detach, leaving the processes stopped (SIGSTOP)
        """

    init(split: Split, current: Tracee, tracer: Tracer, engine: CowEngine, breaker: BreakOnSplit) {
        self.split = split
        self.tracer = tracer
        self.engine = engine
        self.breaker = breaker
        thread = current.tgid == split.writer ? current : tracer.tracees.values.first { $0.tgid == split.writer }
    }

    private func say(_ text: String) {
        tracer.stream.flush()
        let line = text + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }

    /// Reads commands until one lets the processes go (or stdin ends: they are left stopped).
    func run() {
        say("break: every traced process is stopped; 'help' lists the commands")
        while true {
            tracer.stream.flush()
            _ = "(cowtrace) ".withCString { write(STDERR_FILENO, $0, strlen($0)) }
            guard let line = readLine() else {
                say("")
                breaker.perform(.stop, split: split, tracer: tracer)
                return
            }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let command = words.first else { continue }
            switch command {
            case "c", "continue":
                breaker.rearm()
                tracer.resumePaused(except: thread?.tid)
                return
            case "detach":
                breaker.perform(.detach, split: split, tracer: tracer)
                return
            case "kill", "k":
                breaker.perform(.kill, split: split, tracer: tracer)
                return
            case "stop":
                breaker.perform(.stop, split: split, tracer: tracer)
                return
            case "gdb":
                handToGDB()
                return
            case "s", "step", "si", "stepi":
                step()
            case "bt", "backtrace", "where":
                backtrace()
            case "regs", "registers", "info":
                registers()
            case "x":
                examine(Array(words.dropFirst()))
            case "pages":
                sharedPages()
            case "paddr":
                paddr(Array(words.dropFirst()))
            case "help", "h", "?":
                say(Self.help)
            default:
                say("unknown command '\(command)'; 'help' lists the commands")
            }
        }
    }

    // MARK: Looking

    private func currentRegisters() -> Registers? {
        guard let thread, tracer.tracees[thread.tid] != nil else {
            say("the writer \(split.writer) is no longer traced")
            return nil
        }
        guard let regs = try? Ptrace.registers(thread.tid) else {
            say("cannot read the registers of \(thread.tid)")
            return nil
        }
        return regs
    }

    private func backtrace() {
        guard let thread, let regs = currentRegisters() else { return }
        guard let symbolizer = engine.tracker.symbolizer else { return say("no symbolizer") }
        let frames = symbolizer.backtrace(pid: thread.tgid, tid: thread.tid, regs: regs, mappings: engine.tracker.maps(thread.tgid))
        if frames.isEmpty { return say("no frames (could not unwind from \(hex(UInt64(regs.rip))))") }
        for (i, frame) in frames.enumerated() { say(TextRenderer.frameLine(i, frame)) }
    }

    private func registers() {
        guard let thread, let regs = currentRegisters() else { return }
        say("registers of \(thread.tid):")
        for line in BreakOnSplit.registerLines(regs) { say("  " + line) }
    }

    private func examine(_ args: [String]) {
        guard let target = args.first else { return say("usage: x ADDR [N]  or  x PID:ADDR [N]") }
        var pid = split.writer
        var addressText = target
        if let colon = target.firstIndex(of: ":") {
            guard let p = pid_t(target[..<colon]), tracer.tracees.values.contains(where: { $0.tgid == p }) else {
                return say("x: '\(target[..<colon])' is not a traced process")
            }
            pid = p
            addressText = String(target[target.index(after: colon)...])
        }
        guard let address = try? PageInspector.parseAddress(addressText) else { return say("x: malformed address '\(addressText)'") }
        let count = args.count > 1 ? Int(args[1]) : 4
        guard let count, count > 0, count <= 512 else { return say("x: N must be a number from 1 to 512") }
        guard let bytes = TraceeMemory(pid: pid).read(address, count: count * 8), bytes.count == count * 8 else {
            return say("x: cannot read \(count * 8) bytes at \(hex(address)) in \(pid)")
        }
        for row in stride(from: 0, to: count, by: 2) {
            let words = (row..<min(row + 2, count)).map { i in
                "0x" + String(BreakOnSplit.word(bytes, at: i * 8), radix: 16).leftPadded(16)
            }
            say("\(pid) \(hex(address + UInt64(row * 8))):  " + words.joined(separator: "  "))
        }
    }

    private func sharedPages() {
        let ledger = engine.tracker.ledger
        let pids = ledger.processes.sorted()
        if pids.isEmpty { return say("no page is shared any more") }
        for pid in pids {
            let pages = ledger.sharedPages(of: pid).sorted { $0.key < $1.key }
            say("\(pid): \(pages.count) page\(pages.count == 1 ? "" : "s") shared")
            for (page, record) in pages.prefix(16) {
                let others = ledger.holders(frame: record.frame, page: page).subtracting([pid]).sorted()
                say("  \(hex(page)) \(record.region) (\(record.kind.rawValue)) with \(others.map(String.init).joined(separator: ","))")
            }
            if pages.count > 16 { say("  … \(pages.count - 16) more (cowtrace pages \(pid) --list)") }
        }
    }

    private func paddr(_ args: [String]) {
        guard let text = args.first, let address = try? PageInspector.parseAddress(text) else { return say("usage: paddr ADDR") }
        for pid in Set(tracer.tracees.values.map(\.tgid)).sorted() {
            do {
                if let info = try PageInspector.describe(pid: pid, addresses: [address]).first { say("\(pid): \(info.text)") }
            } catch let error as CowtraceError {
                say("\(pid): \(error.message)")
            } catch {
                say("\(pid): \(error)")
            }
        }
    }

    // MARK: Stepping

    /// One instruction of the writer's thread, with the engines' attribution rule applied to
    /// whatever it copied. A `syscall` is not stepped: it would run unlogged.
    private func step() {
        guard let thread, let before = currentRegisters() else { return }
        let pid = thread.tgid
        let memory = tracer.memory(of: pid)
        guard let bytes = memory.read(UInt64(before.rip), count: 15),
              let instruction = breaker.disassembler.decode(bytes, at: UInt64(before.rip)) else {
            return say("cannot decode the instruction at \(hex(UInt64(before.rip)))")
        }
        if instruction.isSyscall { return say("the next instruction is a syscall: 'continue' runs it with its log line") }
        let vector = instruction.needsVectorState ? try? VectorState.read(thread.tid) : nil
        _ = engine.masks.mask(thread.tid)  // known before the step, to restore after its forced trap
        let after: Registers
        switch tracer.stepOnce(thread, ownTrap: { engine.trapped(thread, info: $0, tracer: tracer) }) {
        case .stepped(let registers): after = registers
        case .gone: return say("the writer is gone")
        case .stoppedBy(let status): return say("\(BreakOnSplit.describe(status)) before the step; 'continue' handles it")
        }
        engine.masks.restoreAfterStep(thread.tid)
        let writes = instruction.writeSet(before: before, after: after, vector: vector)
        let touched = instruction.touchedPages(before: before)
        let rseq = engine.rseqPage(thread)
        engine.tracker.sweep(pid, dropReason: "exit", origin: CowTracker.Origin(tid: thread.tid, regs: before)) { page in
            CowEngine.cause(of: page, instruction: instruction, writes: writes, touched: touched, rseq: rseq)
        }
        engine.steppedByHand(thread)
        say("stepped \(hex(UInt64(before.rip)))  \(instruction.text)")
        for line in breaker.disassembly(pid: pid, at: UInt64(after.rip), functionOffset: nil).prefix(1) { say(line) }
    }

    // MARK: Handing over

    private func handToGDB() {
        let writer = split.writer
        let others = Set(tracer.tracees.values.map(\.tgid)).subtracting([writer]).sorted()
        tracer.detachStopped(signal: SIGSTOP)
        tracer.stream.flush()
        if !others.isEmpty {
            say("break: left stopped (SIGSTOP): \(others.map(String.init).joined(separator: " ")); resume them with kill -CONT")
        }
        say("break: running gdb -p \(writer) (the writer is stopped; 'continue' in gdb runs it on)")
        let argv = ["gdb", "-q", "-p", String(writer)]
        _ = withCStrings(argv) { execvp("gdb", $0) }
        say("cowtrace: cannot run gdb: \(ErrnoNames.message(errno)); \(writer) is left stopped")
    }
}
