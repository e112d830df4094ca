/// `--json`: one event object per line.
public final class JSONEventLog {
    private let sink: OutputSink
    public init(sink: OutputSink) { self.sink = sink }

    private var line: [UInt8] = []

    public func emit(_ event: String, _ fields: [(String, JSONValue)]) {
        line.removeAll(keepingCapacity: true)
        line.append(contentsOf: #"{"event":"#.utf8)
        JSONValue.quote(event, into: &line)
        for (key, value) in fields {
            line.append(UInt8(ascii: ","))
            JSONValue.quote(key, into: &line)
            line.append(UInt8(ascii: ":"))
            value.encode(into: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        sink.write(bytes: line)
    }

    /// A line encoded already (with its newline).
    public func write(_ line: [UInt8]) { sink.write(bytes: line) }

    public func flush() { sink.flush() }
}
