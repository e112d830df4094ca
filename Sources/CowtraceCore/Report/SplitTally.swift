import Glibc

/// What the summary counts, added up split by split as the run model is built, so a live
/// run that writes no report file keeps these counters, not every split. Per split only a
/// few integer-keyed counts; names (functions, modules) are derived from the stacks at the end.
public struct SplitTally: Sendable {
    public private(set) var splits = 0
    public var reuses = 0
    public var drops = 0
    /// The first split's engine (for logs without a summary event).
    public private(set) var engine: String?
    public private(set) var causes: [pid_t: [String: Int]] = [:]
    public private(set) var instructions: [UInt64: (text: String, symbol: String?, pages: Int)] = [:]
    /// Splits with a user backtrace, by stack (an index into `RunLog.stacks`).
    public private(set) var pathsByStack: [Int: Int] = [:]
    /// Splits without a user backtrace, by the frame naming their cause, and where they count
    /// among modules ("[kernel]", "[unknown]").
    public private(set) var causeOnly: [String: Int] = [:]
    public private(set) var causeOnlyModules: [String: Int] = [:]

    public init() {}

    mutating func add(_ split: RunLog.Split, hasFrames: Bool) {
        splits += 1
        if engine == nil { engine = split.engine }
        causes[split.writer, default: [:]][split.cause, default: 0] += 1
        if split.cause == "instruction", let ip = split.ip {
            if let old = instructions[ip] {
                instructions[ip]!.pages = old.pages + 1
                if old.symbol == nil && split.symbol != nil { instructions[ip]!.symbol = split.symbol }
            } else {
                instructions[ip] = (split.instruction ?? "?", split.symbol, 1)
            }
        }
        if hasFrames {
            pathsByStack[split.stack, default: 0] += 1
        } else {
            causeOnly[RunLog.causeFrameName(split), default: 0] += 1
            causeOnlyModules[split.cause == "unknown" ? "[unknown]" : "[kernel]", default: 0] += 1
        }
    }

    /// Frame #0's function per split (frames without symbols under "<module> [no symbols]"),
    /// and frame #0's module.
    func functionsAndModules(_ stacks: [[BacktraceFrame]]) -> (functions: [String: Int], modules: [String: Int]) {
        var functions = causeOnly, modules = causeOnlyModules
        for (stack, pages) in pathsByStack {
            guard let top = stacks[stack].first else { continue }
            functions[top.symbol ?? RunLog.moduleName(top) + " [no symbols]", default: 0] += pages
            modules[RunLog.moduleName(top), default: 0] += pages
        }
        return (functions, modules)
    }
}
