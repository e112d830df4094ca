/// `--html`: one self-contained page (data and script inline, nothing fetched): the summary,
/// an icicle flame graph of pages copied by call stack (per process and for all, zoom on
/// click), a page map per mapping over time, and the splits as a table that sorts, filters
/// and pages through rows drawn from the embedded JSON (never one DOM row per split at once).
public enum HTMLReport {
    public static func render(_ log: RunLog, title: String) -> String {
        var data = DataBuilder()
        data.add(log, set: 0)
        let summary = CowSummary(log)
        let processes = Set(log.splits.map(\.writer)).count
        let headline = "<b id=\"split-count\">\(log.splits.count)</b> page\(log.splits.count == 1 ? "" : "s") copied "
            + "(\(ByteCount.text(pages: log.splits.count))) by \(processes) process\(processes == 1 ? "" : "es")"
        let pageMaps = PageMapData.build(log)
        let json = JSONValue.object(data.json(diff: false) + [("maps", pageMaps)])
        return page(title: title, headline: headline, summary: summary.textLines().joined(separator: "\n"), data: json, diff: false)
    }

    /// A differential flame graph of A and B (widths: both runs' pages; colour: B against A).
    public static func renderDiff(_ a: RunLog, _ b: RunLog, title: String, text: String) -> String {
        var data = DataBuilder()
        data.add(a, set: 0)
        data.add(b, set: 1)
        let headline = "A: <b id=\"split-count-a\">\(a.splits.count)</b> pages copied (\(ByteCount.text(pages: a.splits.count))), "
            + "B: <b id=\"split-count-b\">\(b.splits.count)</b> (\(ByteCount.text(pages: b.splits.count)))"
        let json = JSONValue.object(data.json(diff: true) + [("maps", .array([]))])
        return page(title: title, headline: headline, summary: text, data: json, diff: true)
    }

    static func page(title: String, headline: String, summary: String, data: JSONValue, diff: Bool) -> String {
        // "<" never appears outside strings in JSON; inside them \u003c keeps "</script>" out.
        let embedded = data.encoded().replacingAll("<", with: "\\u003c")
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escape(title))</title>
        <style>\(HTMLAssets.style)</style>
        </head>
        <body class="\(diff ? "diff" : "run")">
        <header><h1>\(escape(title))</h1><p class="headline">\(headline)</p></header>
        <section id="summary-section"><h2>Summary</h2><pre id="summary">\(escape(summary))</pre></section>
        <section id="flame-section"><h2>\(diff ? "Differential flame graph (red: more in B, blue: less)" : "Pages copied by call stack")</h2>
        <div class="controls"><label>Process <select id="flame-process"></select></label>
        <button type="button" id="flame-reset">Reset zoom</button> <span id="flame-path"></span></div>
        <div id="flame" class="flame" role="img" aria-label="flame graph"></div>
        <p class="hint">Outermost frame on top. Click a frame to zoom into it; hover for its source line, pages and instructions.</p></section>
        \(diff ? "" : """
        <section id="map-section"><h2>Page map per mapping over time</h2>
        <p class="legend"><span class="sw s0"></span>shared <span class="sw s1"></span>copied by the parent <span class="sw s2"></span>copied by a child <span class="sw s3"></span>reused <span class="sw s4"></span>dropped</p>
        <p class="hint">One row per page (by address), time from left to right. <span id="map-hover"></span></p>
        <div id="maps"></div></section>
        """)
        <section id="table-section"><h2>Splits</h2>
        <div class="controls">
        <label>Cause <select id="f-cause"><option value="">all</option></select></label>
        <label>Writer <select id="f-writer"><option value="">all</option></select></label>
        <label>Function <input id="f-function" type="search" placeholder="contains"></label>
        <label>Source line <input id="f-source" type="search" placeholder="contains"></label>
        </div>
        <table id="splits"><thead><tr>
        <th data-key="seq">#</th>\(diff ? "<th data-key=\"set\">run</th>" : "")<th data-key="time">ms</th><th data-key="writer">writer</th><th data-key="cause">cause</th>
        <th data-key="function">function</th><th data-key="source">source line</th><th data-key="page">page</th><th data-key="region">mapping</th><th data-key="instruction">instruction</th>
        </tr></thead><tbody id="split-rows"></tbody></table>
        <div class="pager"><button type="button" id="prev">&#8249; previous</button> <span id="page-info"></span> <button type="button" id="next">next &#8250;</button></div>
        </section>
        <script type="application/json" id="cowtrace-data">\(embedded)</script>
        <script>\(HTMLAssets.script)</script>
        </body>
        </html>

        """
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// The page's JSON: frames, stacks (frame indices outermost first), processes and one
    /// compact row per split.
    struct DataBuilder {
        var frames: [JSONValue] = []
        var frameIndex: [SpeedscopeProfile.FrameKey: Int] = [:]
        var frameModules: [Int: String] = [:]
        var stacks: [JSONValue] = []
        var stackIndex: [String: Int] = [:]
        var rows: [JSONValue] = []
        var processes: [(String, JSONValue)] = []
        var seenProcess: Set<String> = []

        mutating func frame(_ key: SpeedscopeProfile.FrameKey, module: String?) -> Int {
            if let i = frameIndex[key] { return i }
            frames.append(.array([.string(key.name), .string(key.file), key.line.map { .int($0) } ?? .null, .string(module)]))
            frameIndex[key] = frames.count - 1
            return frames.count - 1
        }

        mutating func stack(_ key: String, _ make: (inout DataBuilder) -> [Int]) -> Int {
            if let i = stackIndex[key] { return i }
            let indices = make(&self)
            stacks.append(.array(indices.map { .int($0) }))
            stackIndex[key] = stacks.count - 1
            return stacks.count - 1
        }

        mutating func add(_ log: RunLog, set: Int) {
            let children = log.children
            for pid in Set(log.splits.map(\.writer)).sorted() {
                let key = "\(set):\(pid)"
                guard seenProcess.insert(key).inserted else { continue }
                processes.append((key, .object([("name", .string("\(log.programName(pid)) pid \(pid)")), ("pid", .int32(pid)),
                                                ("role", .string(children.contains(pid) ? "child" : "parent")), ("set", .int(set))])))
            }
            var stackIDs: [Int: Int] = [:]
            for (n, split) in log.splits.enumerated() {
                let stack: Int
                if log.stacks[split.stack].isEmpty {
                    let name = RunLog.causeFrameName(split)
                    stack = self.stack("cause:" + name) { [$0.frame(.init(name: name, file: nil, line: nil), module: nil)] }
                } else if let known = stackIDs[split.stack] {
                    stack = known
                } else {
                    let frames = log.stacks[split.stack]
                    let key = frames.reversed().map { f in "\(f.ip)|\(RunLog.functionName(f))|\(f.source ?? "")" }.joined(separator: ";")
                    stack = self.stack(key) { builder in
                        frames.reversed().map { builder.frame(SpeedscopeProfile.FrameKey($0), module: $0.module) }
                    }
                    stackIDs[split.stack] = stack
                }
                let time = split.time.map { JSONValue.int(Int($0 / 1000)) } ?? .int(n)
                rows.append(.array([
                    .int(rows.count + 1), .int(set), time, .int32(split.writer), .string(split.cause), .int(stack),
                    .string(hex(split.page)), .string(split.region), .string(split.instruction ?? ""),
                    .string(split.source ?? ""), .string(split.ip.map(hex) ?? ""), .string(split.kind),
                    .string(split.detail ?? split.syscall ?? split.cloneFlag ?? split.note ?? ""),
                ]))
            }
        }

        func json(diff: Bool) -> [(String, JSONValue)] {
            [("diff", .bool(diff)), ("frames", .array(frames)), ("stacks", .array(stacks)),
             ("processes", .object(processes)),
             ("columns", .array(["seq", "set", "time", "writer", "cause", "stack", "page", "region", "instruction",
                                 "source", "ip", "kind", "detail"].map { .string($0) })),
             ("rows", .array(rows))]
        }
    }
}

/// Per mapping: its pages (sorted) and what happened to each over time, for the page map.
enum PageMapData {
    /// 1 copied by the parent, 2 copied by a child, 3 reused, 4 dropped (0, shared, is the start).
    static func build(_ log: RunLog, limit: Int = 24) -> JSONValue {
        let children = log.children
        let useTime = log.splits.allSatisfy { $0.time != nil } && log.drops.allSatisfy { $0.time != nil }
            && log.reuses.allSatisfy { $0.time != nil }
        var byRegion: [String: [(page: UInt64, time: Int64, state: Int)]] = [:]
        for s in log.splits {
            byRegion[s.region, default: []].append((s.page, useTime ? s.time! : Int64(s.sequence), children.contains(s.writer) ? 2 : 1))
        }
        for r in log.reuses { byRegion[r.region, default: []].append((r.page, useTime ? r.time! : Int64(r.sequence), 3)) }
        for d in log.drops { byRegion[d.region, default: []].append((d.page, useTime ? d.time! : Int64(d.sequence), 4)) }
        let times = byRegion.values.flatMap { $0.map(\.time) }
        let start = times.min() ?? 0, end = times.max() ?? 0
        // The mappings with the most copies first; drops alone make a map only when nothing else does.
        let ranked = byRegion.sorted { a, b in
            let ca = a.value.filter { $0.state != 4 }.count, cb = b.value.filter { $0.state != 4 }.count
            return ca != cb ? ca > cb : a.key < b.key
        }
        let maps: [JSONValue] = ranked.prefix(limit).map { region, events in
            let pages = Set(events.map(\.page)).sorted()
            let row = Dictionary(uniqueKeysWithValues: pages.enumerated().map { ($1, $0) })
            let sorted = events.sorted { $0.time != $1.time ? $0.time < $1.time : $0.state < $1.state }
            return .object([
                ("region", .string(region)), ("pages", .array(pages.map { .string(hex($0)) })),
                ("events", .array(sorted.map { .array([.int(row[$0.page]!), .int(Int($0.time)), .int($0.state)]) })),
            ])
        }
        return .object([("unit", .string(useTime ? "us" : "event")), ("start", .int(Int(start))), ("end", .int(Int(end))), ("list", .array(maps)),
                        ("more", .int(max(0, ranked.count - limit)))])
    }
}

extension String {
    /// Every occurrence of `target` replaced (no Foundation in this module).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        guard contains(target) else { return self }
        var out = ""
        out.reserveCapacity(utf8.count)
        for c in self { if c == target { out += replacement } else { out.append(c) } }
        return out
    }
}
