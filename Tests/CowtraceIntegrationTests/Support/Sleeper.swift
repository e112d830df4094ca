import Foundation
import Testing

/// The `sleeper` fixture (it prints its pid, then sleeps, forking on SIGUSR1), started
/// directly or under a launcher (strace, cowtrace), with the pid it printed.
struct Sleeper {
    let process: Process
    let pid: pid_t
    let standardError: Pipe

    init(seconds: Int, under launcher: [String] = []) throws {
        let sleeper = try Fixtures.path("sleeper")
        let command = launcher + [sleeper, String(seconds)]
        process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let out = Pipe()
        standardError = Pipe()
        process.standardOutput = out
        process.standardError = standardError
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        pid = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
