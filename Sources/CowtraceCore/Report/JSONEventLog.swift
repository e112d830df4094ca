/// `--json`: one event object per line.
public final class JSONEventLog {
    private let sink: OutputSink
    public init(sink: OutputSink) { self.sink = sink }

    public func emit(_ event: String, _ fields: [(String, JSONValue)]) {
        sink.write(JSONValue.object([("event", .string(event))] + fields).encoded() + "\n")
    }

    public func flush() { sink.flush() }
}
