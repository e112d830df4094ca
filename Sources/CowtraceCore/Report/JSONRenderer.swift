/// `--json`: one object per event and line (SPEC "JSON events"), as `JSONEventEncoder`
/// writes them (backtraces in a table of `stack` events).
public final class JSONRenderer: EventRenderer {
    private let out: JSONEventLog
    private var encoder = JSONEventEncoder()

    public init(sink: OutputSink) { self.out = JSONEventLog(sink: sink) }

    private var line: [UInt8] = []

    public func render(_ event: TraceEvent, tracees: Int) {
        if case .split(let split) = event {
            line.removeAll(keepingCapacity: true)
            if encoder.encodeSplitLine(split, into: &line, { kind, fields in out.emit(kind, fields) }) {
                out.write(line)
                return
            }
        }
        if case .drop(let drop) = event {
            line.removeAll(keepingCapacity: true)
            encoder.encodeDropLines(drop, into: &line)
            out.write(line)
            return
        }
        encoder.encode(event) { kind, fields in out.emit(kind, fields) }
    }

    public func flush() { out.flush() }

    static func json(_ s: Split, formats: FrameFormats? = nil) -> [(String, JSONValue)] { JSONEventEncoder.json(s, formats: formats) }

    static func frameJSON(_ f: BacktraceFrame) -> JSONValue { JSONEventEncoder.frameJSON(f) }
}
