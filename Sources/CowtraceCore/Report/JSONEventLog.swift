/// `--json`: one event object per line.
public final class JSONEventLog {
    private let sink: OutputSink
    public init(sink: OutputSink) { self.sink = sink }

    private var line: [UInt8] = []

    public func emit(_ event: String, _ fields: [(String, JSONValue)]) {
        line.removeAll(keepingCapacity: true)
        JSONValue.object([("event", .string(event))] + fields).encode(into: &line)
        line.append(10)
        sink.write(bytes: line)
    }

    public func flush() { sink.flush() }
}
