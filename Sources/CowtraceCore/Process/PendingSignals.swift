import Glibc

/// A thread's signal state from /proc/PID/task/TID/status: what is pending for it alone
/// (SigPnd), for its whole process (ShdPnd), and what it blocks (SigBlk). Bit N-1 is
/// signal N. Before letting a thread go, the tracer looks here for a trap of its own still
/// queued: a perf sigtrap raised while the faulting thread blocks SIGTRAP stays pending
/// (asynchronous), and a single-step trap can be queued behind a PTRACE_INTERRUPT stop.
struct PendingSignals: Equatable {
    var thread: UInt64
    var process: UInt64
    var blocked: UInt64

    static func bit(_ signal: Int32) -> UInt64 { 1 << UInt64(signal - 1) }

    func isPending(_ signal: Int32) -> Bool { (thread | process) & Self.bit(signal) != 0 }

    static func read(tgid: pid_t, tid: pid_t) -> PendingSignals? {
        guard let bytes = try? readWholeFile("/proc/\(tgid)/task/\(tid)/status", pid: tid) else { return nil }
        return parse(String(decoding: bytes, as: UTF8.self))
    }

    /// Parses the SigPnd, ShdPnd and SigBlk lines of a status file.
    static func parse(_ text: String) -> PendingSignals? {
        var fields: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            for name in ["SigPnd:", "ShdPnd:", "SigBlk:"] where line.hasPrefix(name) {
                fields[name] = UInt64(line.dropFirst(name.count).filter { !$0.isWhitespace }, radix: 16)
            }
        }
        guard let thread = fields["SigPnd:"], let process = fields["ShdPnd:"], let blocked = fields["SigBlk:"] else { return nil }
        return PendingSignals(thread: thread, process: process, blocked: blocked)
    }
}
