import Foundation
import Testing

/// Every bad input: one line on stderr, "cowtrace: …", non-zero exit, no crash trace.
@Suite(.serialized) struct BadInputTests {
    static func expectOneLine(_ run: CommandResult, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status != 0, sourceLocation: sourceLocation)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr was: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("cowtrace: "), sourceLocation: sourceLocation)
        #expect(run.stderr.contains(text), "stderr was: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(!run.stderr.contains("Fatal error"), sourceLocation: sourceLocation)
    }

    @Test func missingProgram() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace, "./no-such-program"]), containing: "No such file or directory")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "no-such-program-in-path"]), containing: "No such file or directory")
    }

    @Test func nonExecutableProgram() throws {
        let path = Fixtures.directory + "/not-executable"
        _ = FileManager.default.createFile(atPath: path, contents: Data("hello".utf8), attributes: [.posixPermissions: 0o644])
        Self.expectOneLine(try Command.run([Paths.cowtrace, path]), containing: "Permission denied")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "/tmp"]), containing: "Is a directory")
    }

    @Test func unknownPid() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace, "-p", "999999999"]), containing: "No such process")
    }

    /// A process another tracer already holds cannot be traced (EPERM); it is left alone.
    @Test func pidThatCannotBeTraced() throws {
        let traced = try Sleeper(seconds: 20, under: ["/usr/bin/strace", "-o", "/dev/null"])
        defer { traced.process.terminate() }
        let pid = traced.pid
        Self.expectOneLine(try Command.run([Paths.cowtrace, "-p", "\(pid)"]), containing: "Operation not permitted")
        #expect(kill(pid, 0) == 0)
        kill(pid, SIGKILL)
    }

    @Test func malformedArguments() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace]), containing: "PROGRAM")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "-p", "abc"]), containing: "abc")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--engine", "warp", "/bin/true"]), containing: "warp")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "-p", "1", "/bin/true"]), containing: "mutually exclusive")
    }

    @Test func helpPrintsUsage() throws {
        let run = try Command.run([Paths.cowtrace, "--help"])
        #expect(run.status == 0 && run.stdout.contains("usage: cowtrace [options] PROGRAM") && run.stdout.contains("--break-on-split"), "\(run.stdout)")
        #expect(try Command.run([Paths.cowtrace, "-h"]).stdout == run.stdout)
    }

    @Test func versionIsPrinted() throws {
        let run = try Command.run([Paths.cowtrace, "--version"])
        #expect(run.status == 0 && run.stdout.hasPrefix("cowtrace "))
    }

    @Test func unknownOptionIsNamed() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--frobnicate", "/bin/true"]), containing: "unknown option --frobnicate")
    }

    /// `--` ends cowtrace's options: what follows, options included, is the program's.
    @Test func doubleDashEndsOptions() throws {
        let run = try Command.run([Paths.cowtrace, "-q", "--", "/bin/echo", "-q", "--help"])
        #expect(run.status == 0 && run.stdout == "-q --help\n", "\(run.stdout) \(run.stderr)")
        // Options after PROGRAM are the program's too.
        #expect(try Command.run([Paths.cowtrace, "-q", "/bin/echo", "--frobnicate"]).stdout == "--frobnicate\n")
    }

    @Test func negativeCountsAreInvalidValues() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--max-steps", "-1", "/bin/true"]), containing: "invalid value -1 for --max-steps")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--break-on-split=-2", "/bin/true"]), containing: "invalid value -2 for --break-on-split")
    }

    @Test func watchNamingNoMappingIsAnError() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--watch", "", "/bin/true"]), containing: "--watch ''")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--watch", "[nowhere]", "/bin/true"]), containing: "names no mapping")
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--watch", "/no/such/file", "/bin/true"]), containing: "names no mapping")
    }

    @Test func onBreakNeedsBreakOnSplit() throws {
        Self.expectOneLine(try Command.run([Paths.cowtrace, "--on-break", "detach", "/bin/true"]), containing: "--on-break needs --break-on-split")
    }

    /// A full disk under -o or --json: one line naming the file and ENOSPC, non-zero exit.
    @Test(arguments: ["-o", "--json"])
    func writeErrorIsReported(_ option: String) throws {
        let run = try Command.run([Paths.cowtrace, option, "/dev/full", "/bin/true"])
        #expect(run.status != 0)
        let lines = run.stderr.split(separator: "\n").filter { $0.contains("/dev/full") }
        #expect(lines.count == 1 && lines[0].hasPrefix("cowtrace: ") && lines[0].contains("ENOSPC"), "\(run.stderr)")
    }

    /// With stdout closed, `--json -` is refused instead of writing into the -o file, which
    /// took descriptor 1.
    @Test func jsonNeverLandsInTheLogFile() throws {
        let log = Fixtures.directory + "/closed-stdout.log"
        let run = try Command.run(["/bin/sh", "-c", "exec \"$0\" -o \"$1\" --json - /bin/true 1>&-", Paths.cowtrace, log])
        #expect(run.status != 0 && run.stderr.contains("stdout"), "\(run.stderr)")
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(!text.contains("\"event\""))
    }
}
