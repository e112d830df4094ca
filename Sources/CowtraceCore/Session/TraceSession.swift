import Glibc

/// One trace, wired: the tracer (the wait loop), the engine behind it (step or fault, with
/// its page tracker and ledger), and the event stream with its renderers. The command line
/// only fills `Options`; nothing here is wired with closures reaching back into the CLI.
public final class TraceSession {
    public struct Options {
        public enum EngineChoice: String, Sendable { case auto, step, fault, record }
        public enum Target { case launch([String]), attach(pid_t) }

        public var target: Target
        public var engine: EngineChoice = .auto
        public var quiet = false
        public var summaryOnly = false
        public var watch = WatchFilter()
        public var maxSteps: Int?
        /// --buffer-pages, --stack-bytes (record engine).
        public var record = RecordEngine.Settings()
        public var syntax: Disassembler.Syntax = .att
        /// --break-on-split=N, what to do then, and whether a prompt on the terminal decides.
        public var breakOnSplit: Int?
        public var onBreak: BreakOnSplit.Action?
        public var interactive = false
        /// The text log (stderr, or -o) and the JSON log (--json), opened by the caller.
        public var textSink: OutputSink
        public var jsonSink: OutputSink?
        /// More consumers of the events (reports).
        public var renderers: [any EventRenderer] = []
        /// --speedscope, --folded, --html: written from the run model at the end.
        public var reportFiles: ReportFiles?
        /// Flush the logs a few times a second (they go to files someone may follow).
        public var followOutputs = false
        /// A live status line on stderr (when it is a terminal and the log is elsewhere).
        public var statusLine = false

        public init(target: Target, textSink: OutputSink) {
            self.target = target
            self.textSink = textSink
        }
    }

    public let stream = EventStream()
    public let tracer: Tracer
    public let engine: CowEngine
    private let options: Options

    public init(_ options: Options) throws {
        self.options = options
        let detail: TextRenderer.Detail = options.summaryOnly ? .summaryOnly : options.quiet ? .quiet : .full
        stream.add(TextRenderer(sink: options.textSink, detail: detail))
        if let json = options.jsonSink { stream.add(JSONRenderer(sink: json)) }
        options.renderers.forEach(stream.add)
        if options.reportFiles?.isEmpty == false { stream.summary.keepEvents() }

        var configuration = Tracer.Configuration()
        configuration.quiet = options.quiet || options.summaryOnly
        // At a break the processes may be left stopped (--on-break stop, or the prompt's
        // stop and gdb): in a session of their own they survive cowtrace's exit.
        configuration.newSession = options.breakOnSplit != nil && (options.interactive || (options.onBreak ?? .stop) == .stop)
        let processes = ProcessTable()
        tracer = Tracer(configuration: configuration, stream: stream, processes: processes)

        let kind = try Self.engineKind(options)
        let disassembler = try Disassembler(syntax: options.syntax)
        let tracker = CowTracker(stream: stream, watch: options.watch, engine: kind, processes: processes)
        switch kind {
        case .fault: engine = FaultEngine(tracker: tracker, disassembler: disassembler)
        case .step: engine = StepEngine(tracker: tracker, disassembler: disassembler, maxSteps: options.maxSteps)
        case .record:
            var settings = options.record
            if case .attach = options.target { settings.attached = true }
            engine = try RecordEngine(tracker: tracker, disassembler: disassembler, settings: settings)
        }
        engine.connect(to: tracer)
        if let n = options.breakOnSplit {
            tracker.breaker = BreakOnSplit(count: n, action: options.onBreak ?? .stop, interactive: options.interactive,
                                           disassembler: disassembler)
        }
        if !tracker.framesVisible && !options.summaryOnly {
            stream.note("frame numbers are hidden without CAP_SYS_ADMIN: copies are found through pagemap's exclusive bit, frames shown as unknown")
        }
    }

    static func engineKind(_ options: Options) throws -> EngineKind {
        switch options.engine {
        case .step: return .step
        case .record: return .record
        case .fault:
            guard FaultEngine.isAvailable() else {
                throw CowtraceError("--engine fault: this kernel does not allow perf page-fault events with sigtrap (needs Linux 5.13+ and perf permissions)")
            }
            return .fault
        case .auto: return options.maxSteps == nil && FaultEngine.isAvailable() ? .fault : .step
        }
    }

    /// Starts or attaches, runs the loop to the end; returns cowtrace's exit status.
    @available(*, noasync, message: "ptrace calls must stay on the thread that attached")
    public func run() throws -> Int32 {
        switch options.target {
        case .attach(let pid): try tracer.attach(pid: pid)
        case .launch(let command): try tracer.launch(command)
        }
        if !options.summaryOnly {
            switch engine.kind {
            case .fault: stream.note("engine fault (perf page-fault events with sigtrap)")
            case .step: stream.note("engine step (single-stepping)")
            case .record:
                let source = (engine as? RecordEngine)?.usesTracepoints == true ? "page-fault tracepoints" : "software page-fault samples"
                stream.note("engine record (perf ring buffers of \(source), no stop per fault)")
            }
        }
        // Not with a prompt at a break: the ticks would interrupt its reads.
        let progress = !options.followOutputs && !options.statusLine || options.interactive ? nil
            : try LiveProgress.start(tracer: tracer, stream: stream, sharedPages: { [unowned engine] in engine.tracker.ledger.totalShared },
                                     showStatus: options.statusLine)
        engine.periodicTicks = progress != nil
        let status = try tracer.run()
        progress?.stop()
        if let files = options.reportFiles {
            let title: String
            switch options.target {
            case .attach(let pid): title = "cowtrace -p \(pid)"
            case .launch(let command): title = "cowtrace " + command.joined(separator: " ")
            }
            try files.write(stream.summary.runLog, title: title)
        }
        return status
    }
}
