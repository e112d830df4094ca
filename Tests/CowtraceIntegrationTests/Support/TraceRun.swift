import Foundation

/// One cowtrace run with its JSON events parsed.
struct TraceRun {
    let result: CommandResult
    let events: [[String: Any]]

    /// Runs cowtrace with `--json FILE` and the given options on `program`.
    static func run(_ options: [String], _ program: [String], withoutRandomization: Bool = false, seconds: Int = 120) throws -> TraceRun {
        let json = Fixtures.directory + "/events-\(UUID().uuidString).json"
        let command = [Paths.cowtrace, "--json", json] + options + program
        let result = withoutRandomization
            ? try Command.runWithoutRandomization(command, seconds: seconds)
            : try Command.run(command, seconds: seconds)
        let text = (try? String(contentsOfFile: json, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: json)
        let events = text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
        return TraceRun(result: result, events: events)
    }

    func events(_ kind: String) -> [[String: Any]] { events.filter { $0["event"] as? String == kind } }
    var splits: [[String: Any]] { events("split") }
    var clones: [[String: Any]] { events("clone") }
    var summary: [String: Any]? { events("summary").last }

    func splits(onPage page: UInt64) -> [[String: Any]] {
        splits.filter { hexValue($0["page"]) == page }
    }
}

/// "0x…" -> value.
func hexValue(_ any: Any?) -> UInt64? {
    guard let s = any as? String, s.hasPrefix("0x") else { return nil }
    return UInt64(s.dropFirst(2), radix: 16)
}

func pageOf(_ address: UInt64) -> UInt64 { address & ~4095 }
