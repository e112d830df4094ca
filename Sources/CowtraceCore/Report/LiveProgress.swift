import CCowtrace
import Glibc

/// A few times a second while tracing: the logs are flushed (so `-o` and `--json` can be
/// followed, at most a second behind the program), and on a terminal a one-line status is
/// redrawn on stderr. A periodic SIGALRM interrupts the tracer's wait, so this happens even
/// while every tracee runs without stopping. It sees the events first, to clear the status
/// line before the summary is printed.
public final class LiveProgress: EventRenderer {
    private let tracer: Tracer
    private let stream: EventStream
    private let sharedPages: () -> Int
    private let showStatus: Bool
    private let started = JSONEventEncoder.monotonicMicroseconds()
    private var statusShown = false
    private var running = false

    static let interval = 250  // ms

    private init(tracer: Tracer, stream: EventStream, sharedPages: @escaping () -> Int, showStatus: Bool) {
        self.tracer = tracer
        self.stream = stream
        self.sharedPages = sharedPages
        self.showStatus = showStatus
    }

    /// Starts ticking; `showStatus` only takes effect when stderr is a terminal.
    public static func start(tracer: Tracer, stream: EventStream, sharedPages: @escaping () -> Int, showStatus: Bool) throws -> LiveProgress {
        let progress = LiveProgress(tracer: tracer, stream: stream, sharedPages: sharedPages,
                                    showStatus: showStatus && isatty(STDERR_FILENO) != 0)
        stream.addFirst(progress)
        tracer.onTick = { [unowned progress] in progress.tick() }
        try systemCall("setitimer") { cow_tick_start(interval) }
        progress.running = true
        return progress
    }

    public func render(_ event: TraceEvent, tracees: Int) {
        if case .summary = event { stop() }
    }

    private func tick() {
        stream.flush()
        guard showStatus else { return }
        let processes = Set(tracer.tracees.values.map(\.tgid)).count
        let splits = stream.summary.splitCount
        let tenths = Int((JSONEventEncoder.monotonicMicroseconds() - started) / 100_000)
        var line = "cowtrace: \(processes) process\(processes == 1 ? "" : "es"), \(sharedPages()) pages shared, "
            + "\(splits) split\(splits == 1 ? "" : "s") (\(ByteCount.text(pages: splits)) copied), \(tenths / 10).\(tenths % 10) s"
        if line.count > 78 { line = String(line.prefix(78)) }
        write("\r" + line + "\u{1b}[K")
        statusShown = true
    }

    /// Stops the ticks and clears the status line (idempotent).
    public func stop() {
        if running {
            _ = try? systemCall("setitimer") { cow_tick_stop() }
            running = false
        }
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
            guard let n = try? bytes.withUnsafeMutableBytes({ buffer throws(CowtraceError) in
                try systemCall("write") { Glibc.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset) }
            }), n > 0 else { return }
            offset += n
        }
        bytes.removeAll()
    }
}
