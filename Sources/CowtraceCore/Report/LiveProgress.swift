import CCowtrace
import Glibc

/// A few times a second while tracing: the `-o` log and the `--json` events are flushed (so
/// they can be followed, at most a second behind the program), and on a terminal a one-line
/// status is redrawn on stderr. A periodic SIGALRM interrupts the tracer's waitpid, so this
/// happens even while every tracee runs without stopping.
public final class LiveProgress {
    private let tracer: Tracer
    private let tracker: CowTracker
    private let showStatus: Bool
    private let started = CowReporter.monotonicMicroseconds()
    private var statusShown = false

    static let interval = 250  // ms

    private init(tracer: Tracer, tracker: CowTracker, showStatus: Bool) {
        self.tracer = tracer
        self.tracker = tracker
        self.showStatus = showStatus
    }

    /// Starts ticking for `tracer`; `showStatus` only takes effect when stderr is a terminal.
    public static func start(tracer: Tracer, tracker: CowTracker, showStatus: Bool) throws -> LiveProgress {
        let progress = LiveProgress(tracer: tracer, tracker: tracker, showStatus: showStatus && isatty(STDERR_FILENO) != 0)
        tracer.onTick = { [unowned progress] in progress.tick() }
        // The summary goes where the status line is: clear it first.
        tracker.reporter.beforeSummary = { [unowned progress] in progress.stop() }
        try systemCall("setitimer") { cow_tick_start(interval) }
        return progress
    }

    private func tick() {
        tracer.log.flush()
        tracer.events?.flush()
        guard showStatus else { return }
        let processes = Set(tracer.tracees.values.map(\.tgid)).count
        let splits = tracker.reporter.splitCount
        let seconds = Double(CowReporter.monotonicMicroseconds() - started) / 1_000_000
        let tenths = Int((seconds * 10).rounded())
        var line = "cowtrace: \(processes) process\(processes == 1 ? "" : "es"), \(tracker.ledger.totalShared) pages shared, "
            + "\(splits) split\(splits == 1 ? "" : "s") (\(ByteCount.text(pages: splits)) copied), \(tenths / 10).\(tenths % 10) s"
        if line.count > 78 { line = String(line.prefix(78)) }
        write("\r" + line + "\u{1b}[K")
        statusShown = true
    }

    /// Stops the ticks and clears the status line (idempotent).
    public func stop() {
        _ = try? systemCall("setitimer") { cow_tick_stop() }
        tracer.onTick = nil
        if statusShown {
            write("\r\u{1b}[K")
            statusShown = false
        }
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            guard let n = try? bytes.withUnsafeMutableBytes({ buffer throws(SystemCallError) in
                try systemCall("write") { Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset) }
            }), n > 0 else { return }
            offset += n
        }
        bytes.removeAll()
    }
}
