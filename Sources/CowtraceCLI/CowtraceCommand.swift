import ArgumentParser
import CowtraceCore
import Glibc

/// `cowtrace [options] PROGRAM [ARGS...]` and `cowtrace [options] -p PID`.
public struct CowtraceCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cowtrace",
        abstract: "Show copy-on-write at work: log every fork/clone like strace, then name the instruction, syscall or kernel store that copies each shared page.",
        usage: """
            cowtrace [options] PROGRAM [ARGS...]
            cowtrace [options] -p PID
            cowtrace paddr PID ADDR...
            cowtrace pages PID [PID...]
            cowtrace report EVENTS.jsonl [--speedscope F] [--folded F] [--html F] [--summary-only]
            cowtrace diff A.jsonl B.jsonl [--html F]
            """
    )

    public enum Engine: String, ExpressibleByArgument, Sendable { case auto, step, fault }
    public enum OnBreak: String, ExpressibleByArgument, Sendable { case stop, kill, detach, `continue` }
    public enum Syntax: String, ExpressibleByArgument, Sendable { case att, intel }

    @Option(name: .customShort("p"), help: ArgumentHelp("Attach to the running process PID (and what it forks later).", valueName: "PID"))
    var pid: Int32?

    @Option(name: .customShort("o"), help: ArgumentHelp("Write the log to FILE instead of stderr.", valueName: "FILE"))
    var output: String?

    @Option(name: .customLong("json"), help: ArgumentHelp("Write events as JSON lines to FILE ('-' for stdout).", valueName: "FILE"))
    var json: String?

    @Option(help: "Detection engine: auto, step or fault.")
    var engine: Engine = .auto

    @Option(name: .customLong("watch"), help: ArgumentHelp("Track only these pages: ADDR, 0xA-0xB, or a maps name such as [stack], [heap], /path (repeatable).", valueName: "ADDR|REGION"))
    var watch: [String] = []

    @Option(name: .customLong("break-on-split"), help: ArgumentHelp("Stop at the Nth split (default 1).", valueName: "N"))
    var breakOnSplit: Int?

    @Option(name: .customLong("on-break"), help: "What to do at a break instead of the prompt (the default without a terminal on stdin: stop): stop, kill, detach or continue.")
    var onBreak: OnBreak?

    @Option(name: .customLong("max-steps"), help: ArgumentHelp("Single-step at most N instructions; later splits are found at syscall stops.", valueName: "N"))
    var maxSteps: Int?

    @Option(help: "Disassembly syntax: att or intel.")
    var syntax: Syntax = .att

    @Flag(name: .customShort("q"), help: "Log only clone-family calls, splits and clones.")
    var quiet = false

    @Flag(name: .customLong("summary-only"), help: "Print only the end-of-run summary.")
    var summaryOnly = false

    @OptionGroup var reports: LiveReportOptions

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The program to run, with its arguments.", valueName: "PROGRAM [ARGS...]"))
    var command: [String] = []

    public init() {}

    public func validate() throws {
        if pid == nil && command.isEmpty { throw ValidationError("must have PROGRAM [ARGS] or -p PID") }
        if pid != nil && !command.isEmpty { throw ValidationError("-p PID and PROGRAM are mutually exclusive") }
        if let n = breakOnSplit, n < 1 { throw ValidationError("--break-on-split takes a number from 1") }
        if let n = maxSteps, n < 0 { throw ValidationError("--max-steps takes a number from 0") }
    }

    public func run() throws {
        let watchFilter = try WatchFilter(parsing: watch)
        let logSink = try output.map { try OutputSink.open(path: $0) } ?? OutputSink(fd: STDERR_FILENO)
        let events = try json.map { JSONEventLog(sink: try OutputSink.open(path: $0)) }
        let reportFiles = try reports.files()
        var configuration = Tracer.Configuration()
        configuration.quiet = quiet || summaryOnly
        // At a break the processes may be left stopped (--on-break stop, or the prompt's
        // stop and gdb): in a session of their own they survive cowtrace's exit.
        let interactive = breakOnSplit != nil && onBreak == nil && isatty(STDIN_FILENO) != 0
        configuration.newSession = breakOnSplit != nil && (interactive || (onBreak ?? .stop) == .stop)
        let log = SyscallLog(sink: logSink)
        let tracer = Tracer(configuration: configuration, log: log, events: events)
        let reporter = CowReporter(log: log, events: events, summaryOnly: summaryOnly)
        reporter.keepEvents(!reportFiles.isEmpty)
        let disassembler = try Disassembler(syntax: syntax == .intel ? .intel : .att)
        let useFault: Bool
        switch engine {
        case .step: useFault = false
        case .fault:
            guard FaultEngine.isAvailable() else {
                throw CowtraceError("--engine fault: this kernel does not allow perf page-fault events with sigtrap (needs Linux 5.13+ and perf permissions)")
            }
            useFault = true
        case .auto: useFault = maxSteps == nil && FaultEngine.isAvailable()
        }
        let name = useFault ? "fault" : "step"
        let tracker = CowTracker(reporter: reporter, watch: watchFilter, engineName: name)
        let observer: CowEngine = useFault
            ? FaultEngine(tracker: tracker, disassembler: disassembler)
            : StepEngine(tracker: tracker, disassembler: disassembler, maxSteps: maxSteps)
        tracer.observer = observer
        tracker.settle = { [weak tracer] processes in tracer?.settle(processes) ?? processes }
        tracker.settleSiblings = { [weak tracer] pid, tid in _ = tracer?.settle([pid], except: tid) }
        tracker.rseqHolders = { [weak tracer, unowned observer] page, processes in
            tracer.map { observer.rseqHolders(of: page, among: processes, tracer: $0) } ?? []
        }
        if !tracker.framesVisible && !summaryOnly {
            log.message("frame numbers are hidden without CAP_SYS_ADMIN: copies are found through pagemap's exclusive bit, frames shown as unknown")
        }
        if let n = breakOnSplit {
            tracker.breaker = BreakOnSplit(count: n, action: BreakOnSplit.Action(rawValue: (onBreak ?? .stop).rawValue)!,
                                           interactive: interactive, disassembler: disassembler)
        }

        if let pid {
            try tracer.attach(pid: pid)
        } else {
            try tracer.launch(command)
        }
        if !summaryOnly {
            log.message(useFault ? "engine fault (perf page-fault events with sigtrap)" : "engine step (single-stepping)")
        }
        log.muted = summaryOnly
        // Flush -o/--json a few times a second, and show a status line when the log is not on the terminal.
        let progress = interactive || (output == nil && json == nil && !summaryOnly) ? nil
            : try LiveProgress.start(tracer: tracer, tracker: tracker, showStatus: output != nil || summaryOnly)
        let status = try withExtendedLifetime(observer) { try tracer.run() }
        progress?.stop()
        try reportFiles.write(reporter.runLog, title: "cowtrace " + (pid.map { "-p \($0)" } ?? command.joined(separator: " ")))
        throw ExitCode(status)
    }
}

/// Entry point: parses, runs, and turns every failure into one line on stderr.
public enum CowtraceMain {
    public static func main(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        let arguments = normalizeOptionalValues(arguments)
        do {
            // paddr and pages are subcommands; anything else is the program to trace.
            var command: any ParsableCommand
            switch arguments.first {
            case "paddr": command = try PaddrCommand.parseAsRoot(Array(arguments.dropFirst()))
            case "pages": command = try PagesCommand.parseAsRoot(Array(arguments.dropFirst()))
            case "report": command = try ReportCommand.parseAsRoot(Array(arguments.dropFirst()))
            case "diff": command = try DiffCommand.parseAsRoot(Array(arguments.dropFirst()))
            default: command = try CowtraceCommand.parseAsRoot(arguments)
            }
            try command.run()
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch let error as CowtraceError {
            fail(error.message)
        } catch let error as SystemCallError {
            fail(error.description)
        } catch {
            let code = CowtraceCommand.exitCode(for: error)
            if code == .success {
                CowtraceCommand.exit(withError: error)  // --help
            }
            fail(CowtraceCommand.message(for: error) + " (see 'cowtrace --help')", code: 2)
        }
    }

    static func fail(_ message: String, code: Int32 = 1) -> Never {
        let line = "cowtrace: " + message + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        exit(code)
    }

    /// `--break-on-split` may come without a value; give it the default before parsing.
    /// Only cowtrace's own options are looked at: everything from PROGRAM on is the program's.
    static func normalizeOptionalValues(_ arguments: [String]) -> [String] {
        let takesValue: Set<String> = ["-p", "-o", "--json", "--engine", "--watch", "--on-break", "--max-steps", "--syntax", "--break-on-split", "--speedscope", "--folded", "--html"]
        var result: [String] = []
        var index = 0
        while index < arguments.count {
            let arg = arguments[index]
            if arg == "--" || !arg.hasPrefix("-") {
                result += arguments[index...]
                break
            }
            if arg == "--break-on-split" {
                let next = index + 1 < arguments.count ? arguments[index + 1] : nil
                if let next, Int(next) != nil {
                    result += [arg, next]
                    index += 2
                } else {
                    result.append("--break-on-split=1")
                    index += 1
                }
                continue
            }
            result.append(arg)
            if takesValue.contains(arg), index + 1 < arguments.count {
                result.append(arguments[index + 1])
                index += 1
            }
            index += 1
        }
        return result
    }
}
