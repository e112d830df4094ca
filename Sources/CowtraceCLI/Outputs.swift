import CowtraceCore
import Glibc

/// The log (-o, else stderr) and the JSON events (--json), opened so that descriptor reuse
/// cannot swap them, and their write errors gathered for the end of the run.
struct Outputs {
    let log: OutputSink
    let json: OutputSink?

    static func open(log path: String?, json jsonPath: String?) throws -> Outputs {
        // stdout is checked before any file is opened: a closed fd 1 would be reused.
        let json = try jsonPath.map { try OutputSink.open(path: $0) }
        let log = try path.map { try OutputSink.open(path: $0) } ?? OutputSink(fd: STDERR_FILENO, name: "stderr")
        return Outputs(log: log, json: json)
    }

    /// The first write error, as one line (both, when both failed).
    func failure() -> String? {
        let failures = [log.failure, json?.failure].compactMap { $0 }
        return failures.isEmpty ? nil : failures.joined(separator: "; ")
    }
}
