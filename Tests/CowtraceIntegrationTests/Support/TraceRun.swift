import Foundation

/// One cowtrace run with its JSON events parsed.
struct TraceRun {
    let result: CommandResult
    let events: [[String: Any]]

    /// Runs cowtrace with output to files, for runs that leave processes behind (they keep
    /// cowtrace's stdout and stderr open, so pipes would never reach end of file).
    static func runToFiles(_ options: [String], _ program: [String]) throws -> TraceRun {
        let base = Fixtures.directory + "/run-\(UUID().uuidString)"
        // python3 closes every inherited descriptor above 2, then becomes timeout, which
        // kills a cowtrace that hangs instead of hanging the suite.
        let argv = ["/usr/bin/python3", "-c", "import os, sys; os.closerange(3, 65536); os.execv(sys.argv[1], sys.argv[1:])",
                    "/usr/bin/timeout", "--signal=KILL", "120", Paths.cowtrace, "--json", base + ".json"] + options + program
        // posix_spawn and waitpid, not Foundation's Process: Process learns of the exit
        // through an inherited socket, which the stopped processes keep open.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, base + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        guard posix_spawn(&pid, "/usr/bin/python3", &actions, nil, cArgs, environ) == 0 else { throw FixtureError.compile("cowtrace", "posix_spawn failed") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let read = { (suffix: String) in (try? String(contentsOfFile: base + suffix, encoding: .utf8)) ?? "" }
        return TraceRun(result: CommandResult(stdout: read(".out"), stderr: read(".err"), status: code), events: parseEvents(read(".json")))
    }

    /// Runs cowtrace with `--json FILE` and the given options on `program`.
    static func run(_ options: [String], _ program: [String], withoutRandomization: Bool = false, seconds: Int = 120) throws -> TraceRun {
        let json = Fixtures.directory + "/events-\(UUID().uuidString).json"
        let command = [Paths.cowtrace, "--json", json] + options + program
        let result = withoutRandomization
            ? try Command.runWithoutRandomization(command, seconds: seconds)
            : try Command.run(command, seconds: seconds)
        let text = (try? String(contentsOfFile: json, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: json)
        return TraceRun(result: result, events: parseEvents(text))
    }

    /// The JSON lines as objects; a split's `stack` id is resolved into its `backtrace`
    /// (the log writes each distinct backtrace once, as a `stack` event).
    static func parseEvents(_ text: String) -> [[String: Any]] {
        var stacks: [Int: Any] = [0: [[String: Any]]()]
        return text.split(separator: "\n").compactMap { line in
            guard var event = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
            if event["event"] as? String == "stack", let id = event["id"] as? Int { stacks[id] = event["frames"] }
            if event["event"] as? String == "split", event["backtrace"] == nil, let id = event["stack"] as? Int {
                event["backtrace"] = stacks[id]
            }
            return event
        }
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
