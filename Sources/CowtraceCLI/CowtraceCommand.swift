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
        let outputs = try Outputs.open(log: o.output, json: o.json)
        let reports = try ReportFiles(speedscope: o.speedscope, folded: o.folded, html: o.html)
        var session = TraceSession.Options(target: o.pid.map { .attach($0) } ?? .launch(o.command), textSink: outputs.log)
        session.jsonSink = outputs.json
        session.watch = try WatchFilter(parsing: o.watch)
        session.engine = TraceSession.Options.EngineChoice(rawValue: o.engine.rawValue)!
        session.quiet = o.quiet
        session.summaryOnly = o.summaryOnly
        session.maxSteps = o.maxSteps
        session.record.bufferPages = o.bufferPages
        session.record.stackBytes = o.stackBytes
        session.record.whileShared = o.whileShared
        session.record.syscallStops = o.syscallStops
        session.syntax = o.syntax == .intel ? .intel : .att
        session.breakOnSplit = o.breakOnSplit
        session.onBreak = o.onBreak.map { BreakOnSplit.Action(rawValue: $0.rawValue)! }
        session.interactive = o.breakOnSplit != nil && o.onBreak == nil && isatty(STDIN_FILENO) != 0
        session.reportFiles = reports.isEmpty ? nil : reports
        session.followOutputs = o.output != nil || o.json != nil
        session.statusLine = o.output != nil || o.summaryOnly
        let status = try TraceSession(session).run()
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
            case "report": try runSubcommand(ReportCommand.self, Array(arguments.dropFirst()))
            case "diff": try runSubcommand(DiffCommand.self, Array(arguments.dropFirst()))
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
