import Foundation
import Testing

/// The reports people look at (speedscope, folded stacks, the HTML page, `report`, `diff`),
/// from real runs of Fixtures/two_writers.c: the child copies N pages through write_alpha
/// and M pages through write_beta, each page by one store whose address `nm` gives.
@Suite(.serialized) struct ReportTests {
    static func temporary(_ name: String) -> String { Fixtures.directory + "/\(UUID().uuidString)-\(name)" }

    /// The function holding `label` (the nearest text symbol below it that is not a label of ours).
    static func function(containing label: String, in binary: String) throws -> String {
        let address = try Fixtures.symbol(label, in: binary)
        let symbols = try Command.run(["/usr/bin/nm", binary]).stdout.split(separator: "\n").compactMap { line -> (UInt64, String)? in
            let parts = line.split(separator: " ")
            guard parts.count == 3, parts[1] == "T", !parts[2].hasSuffix("_store"), let value = UInt64(parts[0], radix: 16) else { return nil }
            return (value, String(parts[2]))
        }
        return try #require(symbols.filter { $0.0 <= address }.max { $0.0 < $1.0 }?.1)
    }

    /// `--watch` on the fixture's array: only the stores' copies.
    static func watchArray(_ binary: String) throws -> [String] {
        let pages = try Fixtures.symbol("pages", in: binary)
        return ["--watch", String(format: "0x%llx-0x%llx", pages, pages + 128 * 4096)]
    }

    @Test func speedscopeProfileWeighsEveryCopyAndItsHeaviestStackIsTheStore() throws {
        let binary = try Fixtures.path("two_writers")
        let profile = Self.temporary("profile.speedscope.json")
        let run = try TraceRun.run(["-q", "--speedscope", profile], [binary, "6", "20"])
        #expect(run.result.status == 0, "\(run.result.stderr)")
        let file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: profile))) as? [String: Any])
        #expect(file["$schema"] as? String == "https://www.speedscope.app/file-format-schema.json")
        let frames = try #require((file["shared"] as? [String: Any])?["frames"] as? [[String: Any]])
        #expect(frames.allSatisfy { $0["name"] is String })
        let profiles = try #require(file["profiles"] as? [[String: Any]])
        #expect(profiles.count == Set(run.splits.compactMap { $0["writer"] as? Int }).count)
        var total = 0
        var heaviest: (weight: Int, stack: [Int]) = (0, [])
        for p in profiles {
            #expect(p["type"] as? String == "sampled" && p["unit"] as? String == "bytes")
            #expect((p["name"] as? String)?.hasPrefix("two_writers pid ") == true, "\(p["name"] ?? "")")
            let samples = try #require(p["samples"] as? [[Int]]), weights = try #require(p["weights"] as? [Int])
            #expect(p["startValue"] as? Int == 0 && p["endValue"] as? Int == weights.reduce(0, +))
            #expect(samples.count == weights.count && samples.allSatisfy { $0.allSatisfy { (0..<frames.count).contains($0) } })
            total += weights.reduce(0, +)
            var byStack: [[Int]: Int] = [:]
            for (s, w) in zip(samples, weights) { byStack[s, default: 0] += w }
            if let top = byStack.max(by: { $0.value < $1.value }), top.value > heaviest.weight { heaviest = (top.value, top.key) }
        }
        #expect(total == 4096 * run.splits.count)
        // The heaviest stack ends in the function holding beta_store, at its source line.
        let store = try Fixtures.symbol("beta_store", in: binary)
        let line = try Fixtures.sourceLine(of: store, in: binary)
        let inner = try #require(heaviest.stack.last.map { frames[$0] })
        #expect(inner["name"] as? String == (try Self.function(containing: "beta_store", in: binary)))
        let fileBase = (inner["file"] as? String)?.split(separator: "/").last.map(String.init) ?? "?"
        #expect(line.hasSuffix("/" + fileBase + ":\(inner["line"] as? Int ?? -1)"), "\(inner) vs \(line)")
        #expect(heaviest.weight == 20 * 4096)
    }

    @Test func foldedCountsTotalTheSplitsAndTheStoreStackHoldsItsPages() throws {
        let binary = try Fixtures.path("two_writers")
        let folded = Self.temporary("stacks.folded")
        let run = try TraceRun.run(["-q", "--folded", folded] + (try Self.watchArray(binary)), [binary, "5", "9"])
        #expect(run.result.status == 0, "\(run.result.stderr)")
        let lines = try String(contentsOfFile: folded, encoding: .utf8).split(separator: "\n")
        let counts = lines.map { line in (stack: String(line[..<line.lastIndex(of: " ")!]), count: Int(line[line.index(after: line.lastIndex(of: " ")!)...])!) }
        #expect(counts.map(\.count).reduce(0, +) == run.splits.count)
        #expect(run.splits.count == 14)
        let alpha = try Self.function(containing: "alpha_store", in: binary), beta = try Self.function(containing: "beta_store", in: binary)
        let child = try #require(run.clones.first?["child"] as? Int)
        #expect(counts.first { $0.stack.hasSuffix(";main;" + beta) }?.count == 9, "\(counts)")
        #expect(counts.first { $0.stack.hasSuffix(";main;" + alpha) }?.count == 5, "\(counts)")
        #expect(counts.allSatisfy { $0.stack.hasPrefix("two_writers-\(child);") })
    }

    @Test func reportOnTheSavedLogReproducesTheLiveSummaryAndFoldedStacks() throws {
        let binary = try Fixtures.path("two_writers")
        let log = Self.temporary("run.log"), json = Self.temporary("run.json")
        let live = Self.temporary("live.folded"), saved = Self.temporary("saved.folded")
        let run = try Command.run([Paths.cowtrace, "-o", log, "--json", json, "--folded", live, binary, "4", "7"])
        #expect(run.status == 0, "\(run.stderr)")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let liveSummary = try #require(text.range(of: "cow summary (").map { String(text[$0.lowerBound...]) })
        let report = try Command.run([Paths.cowtrace, "report", json, "--folded", saved])
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout == liveSummary)
        #expect(try String(contentsOfFile: saved, encoding: .utf8) == String(contentsOfFile: live, encoding: .utf8))
        #expect(report.stderr == "cowtrace: wrote \(saved)\n")
        // Bytes next to pages, each process apart, and the store's call path.
        #expect(liveSummary.contains("pages copied per process:") && liveSummary.contains("(child of "))
        #expect(liveSummary.contains("main → write_beta"))
        let only = try Command.run([Paths.cowtrace, "report", "--summary-only", json, "--folded", saved])
        #expect(only.stdout == liveSummary && only.stderr.isEmpty)
    }

    @Test func reportNamesTheFirstLineThatIsNotCowtraceJSON() throws {
        let bad = Self.temporary("bad.jsonl")
        try (#"{"event":"exit","pid":5,"status":0,"signal":null}"# + "\n+++ exited with 0 +++\n").write(toFile: bad, atomically: true, encoding: .utf8)
        let run = try Command.run([Paths.cowtrace, "report", bad])
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("cowtrace: \(bad): line 2 is not cowtrace JSON"), "\(run.stderr)")
        #expect(run.stderr.split(separator: "\n").count == 1 && run.stdout.isEmpty)
        let missing = try Command.run([Paths.cowtrace, "report", bad + ".none"])
        #expect(missing.status == 1 && missing.stderr.contains("No such file"), "\(missing.stderr)")
        let usage = try Command.run([Paths.cowtrace, "report"])
        #expect(usage.status == 2 && usage.stderr == "cowtrace: Missing expected argument '<EVENTS.jsonl>' (see 'cowtrace report --help')\n", "\(usage.stderr)")
        let help = try Command.run([Paths.cowtrace, "diff", "--help"])
        #expect(help.status == 0 && help.stdout.contains("--html <FILE>"), "\(help.stdout)")
        let unwritable = try Command.run([Paths.cowtrace, "report", bad, "--html", "/nonexistent/dir/x.html"])
        #expect(unwritable.status == 1 && unwritable.stderr.hasPrefix("cowtrace: \(bad): line 2"), "\(unwritable.stderr)")
    }

    @Test func diffPutsTheFunctionWhoseCountChangedFirst() throws {
        let binary = try Fixtures.path("two_writers")
        let a = Self.temporary("a.json"), b = Self.temporary("b.json"), page = Self.temporary("diff.html")
        let watch = try Self.watchArray(binary)
        #expect(try Command.run([Paths.cowtrace, "-q", "--json", a] + watch + [binary, "8", "16"]).status == 0)
        #expect(try Command.run([Paths.cowtrace, "-q", "--json", b] + watch + [binary, "8", "40"]).status == 0)
        let diff = try Command.run([Paths.cowtrace, "diff", a, b, "--html", page])
        #expect(diff.status == 0, "\(diff.stderr)")
        let lines = diff.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let beta = try Self.function(containing: "beta_store", in: binary), alpha = try Self.function(containing: "alpha_store", in: binary)
        let header = try #require(lines.firstIndex { $0.last == "function" })
        #expect(lines[header + 1] == ["16", "40", "+24", "96", "KiB", beta], "\(diff.stdout)")
        #expect(lines[header + 2] == ["8", "8", "0", "0", "B", alpha], "\(diff.stdout)")
        let paths = try #require(lines.firstIndex { $0.last == "path" })
        #expect(lines[paths + 1].prefix(3) == ["16", "40", "+24"] && lines[paths + 1].last == beta, "\(diff.stdout)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(html.contains(beta) && !html.contains("http://") && !html.contains("https://"))
        let browser = try Self.renderInChromium(page)
        #expect(browser.status == 0 && !browser.stderr.contains("Uncaught"), "\(browser.stderr)")
        #expect(browser.stdout.contains("<b id=\"split-count-a\">24</b>") && browser.stdout.contains("<b id=\"split-count-b\">48</b>"))
        #expect(browser.stdout.components(separatedBy: "class=\"split-row\"").count - 1 == 72, "both runs' rows")
        #expect(browser.stdout.contains(">\(beta)</div>"), "the differential flame graph draws the changed function")
    }

    /// The DOM after the page's scripts ran in a real browser (Chromium, headless), and its log.
    static func renderInChromium(_ page: String, fragment: String = "") throws -> CommandResult {
        let profileDir = Self.temporary("chromium")
        defer { try? FileManager.default.removeItem(atPath: profileDir) }
        return try Command.run(["/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profileDir,
                                "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + page + fragment], seconds: 120)
    }

    @Test func reportFilesThatCannotBeWrittenFailBeforeTheProgramStarts() throws {
        let binary = try Fixtures.path("two_writers")
        for option in ["--html", "--folded", "--speedscope"] {
            let run = try Command.run([Paths.cowtrace, option, "/nonexistent-dir/out", binary, "1", "1"])
            #expect(run.status == 1)
            #expect(run.stderr == "cowtrace: cannot open \(option) file /nonexistent-dir/out: No such file or directory\n", "\(run.stderr)")
            #expect(run.stdout.isEmpty)
        }
    }

    /// The page as a real browser renders it: Chromium, headless, JavaScript on.
    @Test func htmlRenderedByChromiumShowsTheRunWithoutErrors() throws {
        let binary = try Fixtures.path("two_writers")
        let page = Self.temporary("report.html")
        let run = try TraceRun.run(["-q", "--html", page], [binary, "3", "6"])
        #expect(run.result.status == 0, "\(run.result.stderr)")
        let html = try String(contentsOfFile: page, encoding: .utf8)
        #expect(!html.contains("http://") && !html.contains("https://"), "the page must not load anything")
        #expect(!html.contains("<link") && !html.contains(" src="))
        let browser = try Self.renderInChromium(page)
        #expect(browser.status == 0, "\(browser.stderr.suffix(2000))")
        #expect(!browser.stderr.contains("Uncaught"), "\(browser.stderr)")
        let dom = browser.stdout
        #expect(dom.contains("<b id=\"split-count\">\(run.splits.count)</b>"))
        #expect(dom.contains("cow summary (engine ") && !dom.contains("did not finish"), "the live summary, with the run's totals")
        #expect(dom.components(separatedBy: "class=\"split-row\"").count - 1 == run.splits.count, "one table row per split")
        let beta = try Self.function(containing: "beta_store", in: binary)
        let line = try Fixtures.sourceLine(of: try Fixtures.symbol("beta_store", in: binary), in: binary)
        let fileName = try #require(line.split(separator: ":").first?.split(separator: "/").last.map(String.init))
        #expect(dom.contains("class=\"fn\"") && dom.contains(">\(beta)</div>"), "the flame graph draws the store's function")
        #expect(dom.contains("<td class=\"mono\">\(beta)</td>"))
        #expect(dom.contains(fileName + ":" + (line.split(separator: ":").last.map(String.init) ?? "?")), "\(fileName)")
        #expect(dom.contains("<canvas"), "the page map is drawn")

        // Filtered and sorted in the browser (the link's fragment sets the table's controls).
        let filtered = try Self.renderInChromium(page, fragment: "#function=\(beta)&sort=page&desc")
        #expect(!filtered.stderr.contains("Uncaught"), "\(filtered.stderr)")
        let rows = filtered.stdout.components(separatedBy: "class=\"split-row\"").dropFirst()
        #expect(rows.count == 6, "write_beta's splits only")
        let expected = try (0..<6).map { String(format: "0x%llx", try Fixtures.symbol("pages", in: binary) + UInt64(3 + 5 - $0) * 4096) }
        for (row, page) in zip(rows, expected) { #expect(row.contains(">\(page)</td>"), "\(page) in \(row.prefix(600))") }
        let byCause = try Self.renderInChromium(page, fragment: "#cause=clone")
        #expect(byCause.stdout.components(separatedBy: "class=\"split-row\"").count - 1 == run.splits.filter { $0["cause"] as? String == "clone" }.count)
    }
}

/// Logs that can be followed while the program runs, and the live status line.
@Suite(.serialized) struct LiveOutputTests {
    /// The child copies its pages, then sleeps 4 s: the -o log and the --json events must
    /// already hold the splits (at most a second behind), not wait for the end of the run.
    @Test func logAndEventsAreWrittenWhileTheProgramRuns() throws {
        let binary = try Fixtures.path("two_writers")
        let log = ReportTests.temporary("follow.log"), json = ReportTests.temporary("follow.json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.cowtrace)
        process.arguments = ["-q", "-o", log, "--json", json, binary, "2", "3", "4000"]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { process.waitUntilExit() }
        var splitsSeen = (text: 0, json: 0)
        for _ in 0..<30 {
            usleep(100_000)
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let events = (try? String(contentsOfFile: json, encoding: .utf8)) ?? ""
            splitsSeen = (text.components(separatedBy: "cow: split ").count - 1, events.components(separatedBy: "\"event\":\"split\"").count - 1)
            if splitsSeen.text >= 5 && splitsSeen.json >= 5 { break }
        }
        #expect(process.isRunning, "the program still runs")
        #expect(splitsSeen.text >= 5 && splitsSeen.json >= 5, "\(splitsSeen)")
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }

    /// On a terminal, with the log in a file: a status line redrawn on stderr, cleared at the end.
    @Test func statusLineOnATerminalOnly() throws {
        let binary = try Fixtures.path("two_writers")
        let log = ReportTests.temporary("status.log")
        let driver = Paths.packageRoot.appendingPathComponent("Scripts/pty-drive.py").path
        let run = try Command.run(["/usr/bin/python3", driver, "--timeout", "30", "--", Paths.cowtrace, "-q", "-o", log, binary, "2", "3", "1200"])
        let transcript = run.stdout
        #expect(transcript.contains("\rcowtrace: 2 processes, "), "\(transcript.debugDescription)")
        #expect(transcript.contains(" splits (20 KiB copied), ") || transcript.contains(" split"), "\(transcript.debugDescription)")
        let lastStatus = try #require(transcript.range(of: "\rcowtrace: ", options: .backwards))
        #expect(transcript[lastStatus.upperBound...].contains("\r\u{1b}[K"), "cleared at the end")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("cow summary"))
        // Not a terminal: nothing but the program's own output.
        let piped = try Command.run([Paths.cowtrace, "-q", "-o", log, binary, "2", "3", "600"])
        #expect(piped.status == 0 && !piped.stderr.contains("cowtrace:"), "\(piped.stderr)")
    }

    @Test func summaryOnlyPrintsOnlyTheSummary() throws {
        let binary = try Fixtures.path("two_writers")
        let run = try Command.run([Paths.cowtrace, "--summary-only", binary, "2", "3"])
        #expect(run.status == 0)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.first?.hasPrefix("cow summary (engine ") == true, "\(run.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("cow summary") || $0.hasPrefix("  ") }, "\(run.stderr)")
    }
}
