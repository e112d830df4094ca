import ArgumentParser
import CowtraceCore
import Glibc

/// `cowtrace report EVENTS.jsonl`: the summary of a saved `--json` log (the lines the live
/// run printed) and the same report files a live run writes.
public struct ReportCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Print the summary of a saved --json log and write its reports (speedscope, folded stacks, HTML).")

    @Argument(help: ArgumentHelp("A log written with --json.", valueName: "EVENTS.jsonl")) var log: String
    @Option(name: .customLong("speedscope"), help: ArgumentHelp("Write a speedscope profile to FILE.", valueName: "FILE")) var speedscope: String?
    @Option(name: .customLong("folded"), help: ArgumentHelp("Write folded stacks (FlameGraph input) to FILE.", valueName: "FILE")) var folded: String?
    @Option(name: .customLong("html"), help: ArgumentHelp("Write one self-contained HTML page to FILE.", valueName: "FILE")) var html: String?
    @Flag(name: .customLong("summary-only"), help: "Print only the summary (no notes about the files written).") var summaryOnly = false

    public init() {}

    public func run() throws {
        let run = try RunLogReader.read(path: log)
        let files = try ReportFiles(speedscope: speedscope, folded: folded, html: html)
        print(CowSummary(run).textLines().joined(separator: "\n"))
        let written = try files.write(run, title: "cowtrace report: " + (log.split(separator: "/").last.map(String.init) ?? log))
        if !summaryOnly {
            for path in written { FileHandleLine.stderr("cowtrace: wrote \(path)") }
        }
    }
}

/// `cowtrace diff A.jsonl B.jsonl`: pages copied per function and per call path in two runs,
/// biggest change first; `--html` adds a differential flame graph.
public struct DiffCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Compare two saved --json logs: pages copied per function and per call path, biggest change first.")

    @Argument(help: ArgumentHelp("The first run's log.", valueName: "A.jsonl")) var a: String
    @Argument(help: ArgumentHelp("The second run's log.", valueName: "B.jsonl")) var b: String
    @Option(name: .customLong("html"), help: ArgumentHelp("Write a differential flame graph page to FILE.", valueName: "FILE")) var html: String?

    public init() {}

    public func run() throws {
        let runA = try RunLogReader.read(path: a), runB = try RunLogReader.read(path: b)
        let lines = RunDiff(runA, runB).textLines(nameA: a, nameB: b)
        if let html {
            let page = HTMLReport.renderDiff(runA, runB, title: "cowtrace diff: \(a) \u{2192} \(b)", text: lines.joined(separator: "\n"))
            try ReportFiles.write(page, path: html, what: "--html")
        }
        print(lines.joined(separator: "\n"))
    }
}

enum FileHandleLine {
    static func stderr(_ text: String) {
        let line = text + "\n"
        _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}


extension CowtraceMain {
    /// Parses and runs `report` or `diff`; a bad command line points to its own --help.
    static func runSubcommand<Command: ParsableCommand>(_ type: Command.Type, _ arguments: [String]) throws -> Never {
        var command: Command
        do {
            command = try type.parse(arguments)
        } catch {
            if type.exitCode(for: error) == .success { type.exit(withError: error) }  // --help
            fail(type.message(for: error) + " (see 'cowtrace \(type.configuration.commandName ?? "") --help')", code: 2)
        }
        try command.run()
        exit(0)
    }
}
