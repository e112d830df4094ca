import Glibc

/// A whole run as typed values: what a saved `--json` log holds, and what a live run collects
/// from the same events. Every report (summary, folded, speedscope, HTML, diff) renders this.
public struct RunLog: Sendable {
    /// Pages shared at a clone, by kind.
    public struct Share: Sendable, Equatable {
        public let parent: pid_t, child: pid_t, call: String, anon: Int, file: Int, zero: Int
        public var total: Int { anon + file + zero }
    }

    /// A clone-family call as the JSON `clone` event gives it.
    public struct Clone: Sendable, Equatable {
        public let pid: pid_t, child: pid_t, call: String, flags: [String], sharesMemory: Bool, sharedPages: Int
    }

    public struct Split: Sendable, Equatable {
        public let page: UInt64
        public let region: String
        public let kind: String
        public let writer: pid_t
        public let others: [pid_t]
        public let frameBefore: UInt64?
        public let frameAfter: UInt64?
        public let cause: String
        public let detail: String?
        public let ip: UInt64?
        public let instruction: String?
        public let address: UInt64?
        public let size: Int?
        public let syscall: String?
        public let cloneFlag: String?
        /// Frame #0's symbol+offset and source line.
        public let symbol: String?
        public let source: String?
        public let note: String?
        public let engine: String?
        /// Index into `RunLog.stacks` (innermost frame first, as in the log).
        public let stack: Int
        /// Microseconds since the trace began (nil in logs written before it was recorded).
        public let time: Int64?
        /// The event's position in the log: the time axis when `time` is missing.
        public let sequence: Int
    }

    /// A reuse (`pid` wrote its own last frame) or a drop (the page left `pid`).
    public struct PageEvent: Sendable, Equatable {
        public let pid: pid_t, page: UInt64, region: String, frame: UInt64?
        public let reason: String?
        public let time: Int64?
        public let sequence: Int
    }

    public struct Exit: Sendable, Equatable {
        public let pid: pid_t, status: Int?, signal: String?
    }

    /// The counters only the live run knows (engine work, pages still shared at the end).
    public struct Totals: Sendable, Equatable {
        public var engine: String
        public var steps: Int
        public var faults: Int?
        public var stillShared: Int
        public var boundedChecks = 0
        public var fullSweeps: [String: Int] = [:]
        public var lostSamples: CowSummary.LostSamples?

        public init(engine: String, steps: Int, faults: Int?, stillShared: Int, boundedChecks: Int = 0, fullSweeps: [String: Int] = [:],
                    lostSamples: CowSummary.LostSamples? = nil) {
            (self.engine, self.steps, self.faults, self.stillShared) = (engine, steps, faults, stillShared)
            (self.boundedChecks, self.fullSweeps, self.lostSamples) = (boundedChecks, fullSweeps, lostSamples)
        }
    }

    public var shares: [Share] = []
    public var clones: [Clone] = []
    public var splits: [Split] = []
    public var reuses: [PageEvent] = []
    public var drops: [PageEvent] = []
    public var exits: [Exit] = []
    /// Distinct backtraces, innermost frame first; a split names one by index.
    public var stacks: [[BacktraceFrame]] = [[]]
    /// The program each process ran (the executable's path), when known.
    public var programs: [pid_t: String] = [:]
    /// The name ps shows (comm), when known: a symlinked server may run another executable.
    public var names: [pid_t: String] = [:]
    public var totals: Totals?
    /// The summary's counters, kept for every split even when the splits themselves are not.
    public var tally = SplitTally()
    /// Whether `splits`, `reuses` and `drops` keep every event (the report files need them);
    /// without, a long run keeps only `tally`.
    public var keepsEvents = true

    public init() {}

    public static let pageSize = 4096

    /// "redis-server" for a pid (its comm, else the executable's base name), or "pid" when unknown.
    public func programName(_ pid: pid_t) -> String {
        if let name = names[pid] { return name }
        guard let path = programs[pid] else { return "pid" }
        return path.split(separator: "/").last.map(String.init) ?? path
    }

    /// The processes created by a traced clone (the rest are parents: the launched or attached ones).
    public var children: Set<pid_t> {
        Set(shares.map(\.child)).union(clones.filter { !$0.sharesMemory }.map(\.child))
    }
}

extension RunLog {
    /// A stack frame's name as the renderers show it: the function, or `module+0xoffset` for a
    /// frame without symbols (counted under its module), or `0xip` with nothing known.
    public static func functionName(_ frame: BacktraceFrame) -> String {
        if let symbol = frame.symbol { return symbol }
        if let module = frame.module {
            let base = module.split(separator: "/").last.map(String.init) ?? module
            return base + (frame.moduleOffset.map { "+" + hex($0) } ?? "")
        }
        return hex(frame.ip)
    }

    /// The module's base name ("libc.so.6"), "[no module]" for anonymous or JIT code.
    public static func moduleName(_ frame: BacktraceFrame) -> String {
        guard let module = frame.module else { return "[no module]" }
        return module.split(separator: "/").last.map(String.init) ?? module
    }

    /// What a split without a user backtrace is charged to: its cause, named.
    public static func causeFrameName(_ split: Split) -> String {
        switch split.cause {
        case "syscall": "[syscall \(split.syscall ?? "?")]"
        case "clone": "[clone \(split.cloneFlag ?? "store")]"
        case "kernel": "[kernel\(split.detail.map { " " + $0 } ?? "")]"
        case "instruction": "[instruction \(split.ip.map(hex) ?? "?")]"
        default: "[\(split.cause)]"
        }
    }

    /// One split's call path, outermost first, as names (the cause alone without a backtrace).
    public func pathNames(_ split: Split) -> [String] {
        let frames = stacks[split.stack]
        guard !frames.isEmpty else { return [Self.causeFrameName(split)] }
        return frames.reversed().map(Self.functionName)
    }

    /// The function charged for a split: frame #0's, or the cause.
    public func leafName(_ split: Split) -> String {
        stacks[split.stack].first.map(Self.functionName) ?? Self.causeFrameName(split)
    }
}
