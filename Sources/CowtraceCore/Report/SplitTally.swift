import Glibc

/// What the summary counts, added up split by split as the run model is built, so a live
/// run that writes no report file keeps these counters, not every split.
public struct SplitTally: Sendable {
    public private(set) var splits = 0
    public var reuses = 0
    public var drops = 0
    /// The first split's engine (for logs without a summary event).
    public private(set) var engine: String?
    public private(set) var causes: [pid_t: [String: Int]] = [:]
    public private(set) var instructions: [UInt64: (text: String, symbol: String?, pages: Int)] = [:]
    /// Frame #0's function; frames without symbols count under "<module> [no symbols]".
    public private(set) var functions: [String: Int] = [:]
    public private(set) var modules: [String: Int] = [:]
    public private(set) var pathsByStack: [Int: Int] = [:]
    /// Splits without a user backtrace, by the frame naming their cause.
    public private(set) var causeOnly: [String: Int] = [:]

    public init() {}

    mutating func add(_ split: RunLog.Split, top: BacktraceFrame?) {
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
        if let top {
            functions[top.symbol ?? RunLog.moduleName(top) + " [no symbols]", default: 0] += 1
            modules[RunLog.moduleName(top), default: 0] += 1
            pathsByStack[split.stack, default: 0] += 1
        } else {
            let name = RunLog.causeFrameName(split)
            functions[name, default: 0] += 1
            modules[split.cause == "unknown" ? "[unknown]" : "[kernel]", default: 0] += 1
            causeOnly[name, default: 0] += 1
        }
    }
}
