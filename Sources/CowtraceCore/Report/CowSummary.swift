import Glibc

/// End-of-run totals, computed from a `RunLog` (so a live run and `cowtrace report` on its
/// saved log print the same lines): pages shared per clone, pages copied per process, cause,
/// module, instruction, function and call path, with bytes next to page counts.
public struct CowSummary: Sendable {
    public struct Count: Sendable, Equatable {
        public let name: String
        public let pages: Int
    }

    public let engine: String
    public let steps: Int
    public let faults: Int?
    public let stillShared: Int
    /// Record engine: samples the kernel could not write into full ring buffers, and the
    /// buffer size (pages per thread) that was too small.
    public struct LostSamples: Sendable, Equatable {
        public let count: Int
        public let bufferPages: Int
        public init(count: Int, bufferPages: Int) {
            self.count = count
            self.bufferPages = bufferPages
        }
    }
    public let lostSamples: LostSamples?
    /// Syscall exits checked at their possible stores only, and full sweeps of the shared
    /// pages (by syscall) for calls whose stores cannot be bounded.
    public var boundedChecks: Int
    public var fullSweeps: [String: Int]
    /// Whether the log has the end-of-run totals (a run that was killed has none).
    public let finished: Bool
    public let clones: [RunLog.Share]
    public let splits: Int
    public let reuses: Int
    public let drops: Int
    public let causesByProcess: [pid_t: [String: Int]]
    /// Each writer, in pid order, with its program and the process it was cloned from.
    public let processes: [(pid: pid_t, program: String, parent: pid_t?, pages: Int)]
    public let topInstructions: [(ip: UInt64, text: String, symbol: String?, pages: Int)]
    /// Frame #0's function; frames without symbols count under "<module> [no symbols]".
    public let topFunctions: [Count]
    /// Frame #0's module; splits without a user frame under "[kernel]" (or the cause).
    public let byModule: [Count]
    /// Whole call paths, outermost first.
    public let topPaths: [(frames: [String], pages: Int)]

    public init(_ log: RunLog) {
        let tally = log.tally
        engine = log.totals?.engine ?? tally.engine ?? "?"
        steps = log.totals?.steps ?? 0
        faults = log.totals?.faults
        stillShared = log.totals?.stillShared ?? 0
        lostSamples = log.totals?.lostSamples
        boundedChecks = log.totals?.boundedChecks ?? 0
        fullSweeps = log.totals?.fullSweeps ?? [:]
        finished = log.totals != nil
        clones = log.shares
        splits = tally.splits
        reuses = tally.reuses
        drops = tally.drops
        let causes = tally.causes
        causesByProcess = causes
        let parents = Dictionary(log.shares.map { ($0.child, $0.parent) }, uniquingKeysWith: { a, _ in a })
        processes = causes.keys.sorted().map { pid in
            (pid, log.programName(pid), parents[pid], causes[pid]!.values.reduce(0, +))
        }
        topInstructions = tally.instructions.map { (ip: $0.key, text: $0.value.text, symbol: $0.value.symbol, pages: $0.value.pages) }
            .sorted { $0.pages != $1.pages ? $0.pages > $1.pages : $0.ip < $1.ip }
        let named = tally.functionsAndModules(log.stacks)
        topFunctions = Self.ranked(named.functions)
        byModule = Self.ranked(named.modules)
        var paths: [[String]: Int] = [:]
        for (name, pages) in tally.causeOnly { paths[[name], default: 0] += pages }
        for (stack, pages) in tally.pathsByStack { paths[log.stacks[stack].reversed().map(RunLog.functionName), default: 0] += pages }
        topPaths = paths.map { (frames: $0.key, pages: $0.value) }.sorted {
            $0.pages != $1.pages ? $0.pages > $1.pages : $0.frames.lexicographicallyPrecedes($1.frames)
        }
    }

    static func ranked(_ counts: [String: Int]) -> [Count] {
        counts.map { Count(name: $0.key, pages: $0.value) }.sorted { $0.pages != $1.pages ? $0.pages > $1.pages : $0.name < $1.name }
    }

    static func pages(_ n: Int) -> String { "\(n) page\(n == 1 ? "" : "s")" }

    /// "  2000  7.8 MiB  name": the count columns of the top lists.
    static func row(_ pages: Int, _ name: String) -> String {
        "    \(String(pages).leftPadded(6, with: " "))  \(ByteCount.text(pages: pages).leftPadded(9, with: " "))  \(name)"
    }

    /// A call path cut to its innermost frames, so the lines stay readable.
    static func shortPath(_ path: [String], frames: Int = 8) -> String {
        (path.count <= frames ? path : ["…"] + path.suffix(frames)).joined(separator: " → ")
    }

    public func textLines() -> [String] {
        let work = !finished ? "no summary event: the run did not finish"
            : faults.map { "\($0) page fault\($0 == 1 ? "" : "s")" } ?? "\(steps) step\(steps == 1 ? "" : "s")"
        var lines = ["cow summary (engine \(engine), \(work)):"]
        for c in clones {
            lines.append("  \(c.call) \(c.parent) -> \(c.child): \(Self.pages(c.total)) shared, \(ByteCount.text(pages: c.total)) (anon \(c.anon), file \(c.file), zero \(c.zero))")
        }
        let perProcess = causesByProcess.keys.sorted().map { pid in
            "\(pid): " + causesByProcess[pid]!.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        lines.append("  splits: \(splits)" + (perProcess.isEmpty ? "" : " (" + perProcess.joined(separator: "; ") + ")")
                     + ", \(ByteCount.text(pages: splits)) copied")
        lines.append("  reused: \(reuses), dropped: \(drops), still shared: \(stillShared)")
        if let lost = lostSamples, lost.count > 0 {
            lines.append("  lost samples: \(lost.count) (ring buffers of \(lost.bufferPages) pages were full; raise --buffer-pages): pages they copied are unknown")
        }
        if boundedChecks > 0 || !fullSweeps.isEmpty {
            let sweeps = fullSweeps.values.reduce(0, +)
            let names = fullSweeps.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(8).map { "\($0.key) \($0.value)" }
            lines.append("  syscalls checked at their stores: \(boundedChecks); full sweeps: \(sweeps)" + (names.isEmpty ? "" : " (" + names.joined(separator: ", ") + ")"))
        }
        if !processes.isEmpty {
            lines.append("  pages copied per process:")
            for p in processes {
                let role = p.parent.map { "child of \($0)" } ?? "parent"
                lines.append(Self.row(p.pages, "\(p.program) pid \(p.pid) (\(role))"))
            }
        }
        if !byModule.isEmpty {
            lines.append("  pages copied per module (frame #0):")
            for m in byModule.prefix(10) { lines.append(Self.row(m.pages, m.name)) }
        }
        let top = topInstructions.prefix(10)
        if !top.isEmpty {
            lines.append("  top instructions by pages copied:")
            for t in top {
                lines.append("    \(String(t.pages).leftPadded(6, with: " "))  \(hex(t.ip))\(t.symbol.map { " <\($0)>" } ?? "")  \(t.text)")
            }
        }
        if !topFunctions.isEmpty {
            lines.append("  top functions by pages copied:")
            for f in topFunctions.prefix(10) { lines.append(Self.row(f.pages, f.name)) }
        }
        if !topPaths.isEmpty {
            lines.append("  top call paths by pages copied (outermost first):")
            for p in topPaths.prefix(5) { lines.append(Self.row(p.pages, Self.shortPath(p.frames))) }
        }
        return lines
    }

    public func json() -> [(String, JSONValue)] {
        let counts = { (list: [Count], key: String) -> JSONValue in
            .array(list.prefix(20).map { .object([(key, .string($0.name)), ("pages", .int($0.pages))]) })
        }
        return [
            ("engine", .string(engine)), ("steps", .int(steps)), ("faults", faults.map { .int($0) } ?? .null),
            ("lost_samples", lostSamples.map { .int($0.count) } ?? .null), ("buffer_pages", lostSamples.map { .int($0.bufferPages) } ?? .null), ("splits", .int(splits)), ("reuses", .int(reuses)),
            ("drops", .int(drops)), ("still_shared", .int(stillShared)),
            ("bounded_checks", .int(boundedChecks)), ("full_sweeps", .int(fullSweeps.values.reduce(0, +))),
            ("full_sweeps_by_syscall", .object(fullSweeps.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("bytes_copied", .int(splits * RunLog.pageSize)),
            ("clones", .array(clones.map { c in
                .object([("parent", .int32(c.parent)), ("child", .int32(c.child)), ("syscall", .string(c.call)),
                         ("shared_pages", .int(c.total)), ("anon", .int(c.anon)), ("file", .int(c.file)), ("zero", .int(c.zero))])
            })),
            ("by_process", .array(causesByProcess.keys.sorted().map { pid in
                .object([("pid", .int32(pid)), ("causes", .object(causesByProcess[pid]!.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }))])
            })),
            ("top_instructions", .array(topInstructions.prefix(20).map { t in
                .object([("ip", .hex(t.ip)), ("instruction", .string(t.text)), ("symbol", .string(t.symbol)), ("pages", .int(t.pages))])
            })),
            ("top_functions", counts(topFunctions, "function")),
            ("by_module", counts(byModule, "module")),
            ("top_paths", .array(topPaths.prefix(20).map { p in
                .object([("path", .array(p.frames.map { .string($0) })), ("pages", .int(p.pages))])
            })),
        ]
    }
}

/// Builds the run model from the event stream, as any other consumer (through the same JSON
/// objects the --json log gets, so `cowtrace report` on that log sees what this saw), and
/// the summary from it at the end.
public final class SummaryCollector: EventRenderer {
    private var encoder = JSONEventEncoder()
    private var builder = RunLogBuilder(keepsEvents: false)

    public init() {}

    /// Keep every split, reuse and drop (the report files need them), not only the
    /// summary's counters. Set before the first event.
    public func keepEvents() { builder = RunLogBuilder(keepsEvents: true) }

    public func render(_ event: TraceEvent, tracees: Int) {
        switch event {
        case .split(let split):
            // The hot path: typed, not through JSON objects (RunLogBuilder.add(_:Split) writes
            // the same values the JSON log reads back as; the report tests hold them equal).
            builder.add(split, time: builder.log.keepsEvents ? encoder.elapsed() : nil)
        case .drop(let d) where !builder.log.keepsEvents:
            builder.addDrops(d.pages.count)
        case .shared(let s):
            // Typed too: a fork, a clone and an exit are events per child.
            for pid in [s.parent, s.child] {
                if let seen = encoder.firstSight(of: pid) { builder.addProcess(pid, program: seen.program, name: seen.name) }
            }
            builder.add(s)
        case .clone(let c):
            builder.add(c)
        case .exit(let e):
            builder.add(e)
        case .reuse, .drop, .summary:
            encoder.encode(event) { kind, fields in try? builder.add(kind, fields) }
        default: break
        }
    }

    /// The run so far.
    public var runLog: RunLog { builder.finish() }

    /// Splits so far (the live status line).
    public var splitCount: Int { builder.log.tally.splits }

    /// The totals at the end: what the engine did and what is still shared.
    public func final(engine: EngineKind, steps: Int, faults: Int?, stillShared: Int, lost: CowSummary.LostSamples? = nil) -> CowSummary {
        var log = builder.finish()
        log.totals = RunLog.Totals(engine: engine.rawValue, steps: steps, faults: faults, stillShared: stillShared, lostSamples: lost)
        return CowSummary(log)
    }
}
