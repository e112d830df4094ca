import ArgumentParser
import CCowtrace
import CowtraceCore
import Glibc

/// `cowtrace [options] PROGRAM [ARGS...]` and `cowtrace [options] -p PID`.
public struct TraceCommand {
    let options: TraceOptions

    public init(options: TraceOptions) { self.options = options }

    /// Traces until every traced process is gone or let go; returns cowtrace's exit status.
    public func run() throws -> Int32 {
        let o = options
        let watchFilter = try WatchFilter(parsing: o.watch)
        let outputs = try Outputs.open(log: o.output, json: o.json)
        var configuration = Tracer.Configuration()
        configuration.quiet = o.quiet || o.summaryOnly
        // At a break the processes may be left stopped (--on-break stop, or the prompt's
        // stop and gdb): in a session of their own they survive cowtrace's exit.
        let interactive = o.breakOnSplit != nil && o.onBreak == nil && isatty(STDIN_FILENO) != 0
        configuration.newSession = o.breakOnSplit != nil && (interactive || (o.onBreak ?? .stop) == .stop)
        let log = SyscallLog(sink: outputs.log)
        let events = outputs.json.map { JSONEventLog(sink: $0) }
        let tracer = Tracer(configuration: configuration, log: log, events: events)
        let reporter = CowReporter(log: log, events: events, summaryOnly: o.summaryOnly)
        let disassembler = try Disassembler(syntax: o.syntax == .intel ? .intel : .att)
        let useFault: Bool
        switch o.engine {
        case .step: useFault = false
        case .fault:
            guard FaultEngine.isAvailable() else {
                throw CowtraceError("--engine fault: this kernel does not allow perf page-fault events with sigtrap (needs Linux 5.13+ and perf permissions)")
            }
            useFault = true
        case .auto: useFault = o.maxSteps == nil && FaultEngine.isAvailable()
        }
        let name = useFault ? "fault" : "step"
        let tracker = CowTracker(reporter: reporter, watch: watchFilter, engineName: name)
        let observer: CowEngine = useFault
            ? FaultEngine(tracker: tracker, disassembler: disassembler)
            : StepEngine(tracker: tracker, disassembler: disassembler, maxSteps: o.maxSteps)
        tracer.observer = observer
        tracker.settle = { [weak tracer] processes in tracer?.settle(processes) ?? processes }
        tracker.settleSiblings = { [weak tracer] pid, tid in _ = tracer?.settle([pid], except: tid) }
        tracker.rseqHolders = { [weak tracer, unowned observer] page, processes in
            tracer.map { observer.rseqHolders(of: page, among: processes, tracer: $0) } ?? []
        }
        if !tracker.framesVisible && !o.summaryOnly {
            log.message("frame numbers are hidden without CAP_SYS_ADMIN: copies are found through pagemap's exclusive bit, frames shown as unknown")
        }
        if let n = o.breakOnSplit {
            tracker.breaker = BreakOnSplit(count: n, action: BreakOnSplit.Action(rawValue: (o.onBreak ?? .stop).rawValue)!,
                                           interactive: interactive, disassembler: disassembler)
        }

        if let pid = o.pid {
            try tracer.attach(pid: pid)
        } else {
            try tracer.launch(o.command)
        }
        if !o.summaryOnly {
            log.message(useFault ? "engine fault (perf page-fault events with sigtrap)" : "engine step (single-stepping)")
        }
        let status = try withExtendedLifetime(observer) { try tracer.run() }
        // Output lost to a write error is said once, and the exit status says so.
        if let failure = outputs.failure() {
            CowtraceMain.printError(failure)
            return status == 0 ? 1 : status
        }
        return status
    }
}

/// Entry point: parses, runs, and turns every failure into one line on stderr.
public enum CowtraceMain {
    public static let version = "cowtrace 0.1"

    public static func main(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        do {
            // Subcommands come first; anything else is options, then the program to trace.
            switch arguments.first {
            case "paddr":
                var command = try PaddrCommand.parseAsRoot(Array(arguments.dropFirst()))
                try command.run()
                exit(0)
            case "pages":
                var command = try PagesCommand.parseAsRoot(Array(arguments.dropFirst()))
                try command.run()
                exit(0)
            default:
                switch try TraceCommandLine.parse(arguments) {
                case .help:
                    writeAll(STDOUT_FILENO, TraceOptionTable.help)
                    exit(0)
                case .version:
                    writeAll(STDOUT_FILENO, version + "\n")
                    exit(0)
                case .trace(let options):
                    _ = cow_run_guarded()  // the caller's process waits here; the tracing goes on in its child
                    exit(try TraceCommand(options: options).run())
                }
            }
        } catch let error as UsageError {
            fail(error.message + " (see 'cowtrace --help')", code: 2)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch let error as CowtraceError {
            fail(error.message)
        } catch let error as SystemCallError {
            fail(error.description)
        } catch {
            let code = PaddrCommand.exitCode(for: error)
            if code == .success {
                PaddrCommand.exit(withError: error)  // paddr/pages --help
            }
            fail(PaddrCommand.message(for: error) + " (see 'cowtrace --help')", code: 2)
        }
    }

    static func printError(_ message: String) {
        writeAll(STDERR_FILENO, "cowtrace: " + message + "\n")
    }

    static func fail(_ message: String, code: Int32 = 1) -> Never {
        printError(message)
        exit(code)
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
