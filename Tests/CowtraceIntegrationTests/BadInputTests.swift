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
        let sleeper = try Fixtures.path("sleeper")
        let strace = Process()
        strace.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        strace.arguments = ["-o", "/dev/null", sleeper, "20"]
        let out = Pipe()
        strace.standardOutput = out
        try strace.run()
        defer { strace.terminate() }
        let pidLine = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let pid = try #require(Int32(pidLine.trimmingCharacters(in: .whitespacesAndNewlines)))
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
}
