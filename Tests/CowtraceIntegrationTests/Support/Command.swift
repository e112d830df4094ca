import Foundation

/// A finished command: what it printed and how it ended.
struct CommandResult {
    let stdout: String
    let stderr: String
    let status: Int32

    var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
}

enum Command {
    /// Runs `arguments` with a hard time limit (coreutils timeout), so a hung tracer fails
    /// the test instead of the run.
    static func run(_ arguments: [String], seconds: Int = 60, environment: [String: String]? = nil, stdin: FileHandle? = nil) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["--signal=KILL", "\(seconds)"] + arguments
        if let environment { process.environment = environment }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin ?? FileHandle.nullDevice
        try process.run()
        // Read both pipes concurrently so neither fills up and blocks the child.
        nonisolated(unsafe) var errData = Data()
        let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errReader.isFinished { usleep(1000) }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return CommandResult(stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self), status: status)
    }

    /// Runs a program under `env -i setarch x86_64 -R`, so two runs (strace's and cowtrace's)
    /// see the same addresses.
    static func runWithoutRandomization(_ arguments: [String], seconds: Int = 60) throws -> CommandResult {
        try run(["/usr/bin/env", "-i", "/usr/bin/setarch", "x86_64", "-R"] + arguments, seconds: seconds)
    }
}

/// Paths to the package, the built cowtrace binary and the compiled fixtures.
enum Paths {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The cowtrace executable next to the test bundle (swift build puts both in one folder).
    static let cowtrace: String = {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        var candidates = [bundleDir.appendingPathComponent("cowtrace").path]
        var dir = bundleDir
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            candidates.append(dir.appendingPathComponent("cowtrace").path)
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/cowtrace").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }()
}
