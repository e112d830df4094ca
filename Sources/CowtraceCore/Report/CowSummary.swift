import Glibc

/// End-of-run totals: pages shared per clone, splits per process and cause, reuses, drops,
/// what is still shared, and the instructions that copied the most pages.
public struct CowSummary: Sendable {
    public struct CloneShare: Sendable {
        public let parent: pid_t, child: pid_t, call: String, anon: Int, file: Int, zero: Int
        public var total: Int { anon + file + zero }
    }

    public var engine = EngineKind.step
    public var steps = 0
    /// Page faults seen (fault engine).
    public var faults: Int?
    public var stillShared = 0
    /// Syscall exits checked at their possible stores only, and full sweeps of the shared
    /// pages (by syscall) for calls whose stores cannot be bounded.
    public var boundedChecks = 0
    public var fullSweeps: [String: Int] = [:]
    public private(set) var clones: [CloneShare] = []
    public private(set) var splits = 0
    public private(set) var causesByProcess: [pid_t: [String: Int]] = [:]
    public private(set) var reuses = 0
    public private(set) var drops = 0
    /// ip -> (instruction text, pages copied)
    public private(set) var byInstruction: [UInt64: (text: String, symbol: String?, pages: Int)] = [:]

    mutating func add(_ event: TraceEvent) {
        switch event {
        case .shared(let s):
            clones.append(CloneShare(parent: s.parent, child: s.child, call: s.call, anon: s.anon, file: s.file, zero: s.zero))
        case .split(let s):
            splits += 1
            causesByProcess[s.writer, default: [:]][s.cause.name, default: 0] += 1
            if case .instruction(let w) = s.cause {
                if let old = byInstruction[w.ip], old.symbol != nil {
                    byInstruction[w.ip]!.pages = old.pages + 1  // the usual case: a store seen before
                } else {
                    let symbol = s.backtrace.first?.symbol.map { sym in sym + (s.backtrace.first?.offset.map { $0 == 0 ? "" : "+0x" + String($0, radix: 16) } ?? "") }
                    let old = byInstruction[w.ip]
                    byInstruction[w.ip] = (w.text, symbol ?? old?.symbol, (old?.pages ?? 0) + 1)
                }
            }
        case .reuse:
            reuses += 1
        case .drop(let drop):
            drops += drop.pages.count
        default:
            break
        }
    }

    public var topInstructions: [(ip: UInt64, text: String, symbol: String?, pages: Int)] {
        byInstruction.map { (ip: $0.key, text: $0.value.text, symbol: $0.value.symbol, pages: $0.value.pages) }
            .sorted { $0.pages != $1.pages ? $0.pages > $1.pages : $0.ip < $1.ip }
    }

    /// Pages copied per function (the symbol without its offset).
    public var topFunctions: [(function: String, pages: Int)] {
        var counts: [String: Int] = [:]
        for entry in byInstruction.values {
            guard let symbol = entry.symbol else { continue }
            let function = symbol.split(separator: "+").first.map(String.init) ?? symbol
            counts[function, default: 0] += entry.pages
        }
        return counts.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    func textLines() -> [String] {
        let work = faults.map { "\($0) page fault\($0 == 1 ? "" : "s")" } ?? "\(steps) step\(steps == 1 ? "" : "s")"
        var lines = ["cow summary (engine \(engine.rawValue), \(work)):"]
        for c in clones {
            lines.append("  \(c.call) \(c.parent) -> \(c.child): \(c.total) page\(c.total == 1 ? "" : "s") shared (anon \(c.anon), file \(c.file), zero \(c.zero))")
        }
        let perProcess = causesByProcess.keys.sorted().map { pid in
            "\(pid): " + causesByProcess[pid]!.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        lines.append("  splits: \(splits)" + (perProcess.isEmpty ? "" : " (" + perProcess.joined(separator: "; ") + ")"))
        lines.append("  reused: \(reuses), dropped: \(drops), still shared: \(stillShared)")
        if boundedChecks > 0 || !fullSweeps.isEmpty {
            let sweeps = fullSweeps.values.reduce(0, +)
            let names = fullSweeps.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(8).map { "\($0.key) \($0.value)" }
            lines.append("  syscalls checked at their stores: \(boundedChecks); full sweeps: \(sweeps)" + (names.isEmpty ? "" : " (" + names.joined(separator: ", ") + ")"))
        }
        let top = topInstructions.prefix(10)
        if !top.isEmpty {
            lines.append("  top instructions by pages copied:")
            for t in top {
                lines.append("    \(String(t.pages).leftPadded(6, with: " "))  \(hex(t.ip))\(t.symbol.map { " <\($0)>" } ?? "")  \(t.text)")
            }
        }
        let functions = topFunctions.prefix(10)
        if !functions.isEmpty {
            lines.append("  top functions by pages copied:")
            for f in functions { lines.append("    \(String(f.pages).leftPadded(6, with: " "))  \(f.function)") }
        }
        return lines
    }

    func json() -> [(String, JSONValue)] {
        [
            ("engine", .string(engine.rawValue)), ("steps", .int(steps)), ("faults", faults.map { .int($0) } ?? .null), ("splits", .int(splits)), ("reuses", .int(reuses)),
            ("drops", .int(drops)), ("still_shared", .int(stillShared)),
            ("bounded_checks", .int(boundedChecks)), ("full_sweeps", .int(fullSweeps.values.reduce(0, +))),
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
            ("top_functions", .array(topFunctions.prefix(20).map { f in
                .object([("function", .string(f.function)), ("pages", .int(f.pages))])
            })),
        ]
    }
}

/// Builds the summary from the event stream, as any other consumer.
public final class SummaryCollector: EventRenderer {
    public private(set) var summary = CowSummary()

    public func render(_ event: TraceEvent, tracees: Int) {
        switch event {
        case .shared, .split, .reuse, .drop: summary.add(event)
        default: break
        }
    }

    /// The totals at the end: what the engine did and what is still shared.
    public func final(engine: EngineKind, steps: Int, faults: Int?, stillShared: Int) -> CowSummary {
        var result = summary
        result.engine = engine
        result.steps = steps
        result.faults = faults
        result.stillShared = stillShared
        return result
    }
}
