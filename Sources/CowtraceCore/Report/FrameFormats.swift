/// Backtraces and instruction bytes already formatted once: a loop copying page after page
/// repeats them split after split. Keyed by addresses (cheap to hash), checked for equality.
final class FrameFormats {
    private var texts: [[UInt64]: (frames: [BacktraceFrame], source: String?, text: String)] = [:]
    private var objects: [[UInt64]: (frames: [BacktraceFrame], json: JSONValue)] = [:]
    private var bytes: [UInt64: (bytes: [UInt8], text: String)] = [:]
    private let limit = 4096

    func backtraceText(_ frames: [BacktraceFrame], sourceText: String?) -> String {
        let key = frames.map(\.ip)
        if let hit = texts[key], hit.source == sourceText, hit.frames == frames { return hit.text }
        let text = TextRenderer.backtraceText(frames, sourceText: sourceText)
        if texts.count < limit { texts[key] = (frames, sourceText, text) }
        return text
    }

    func backtraceJSON(_ frames: [BacktraceFrame]) -> JSONValue {
        let key = frames.map(\.ip)
        if let hit = objects[key], hit.frames == frames { return hit.json }
        var encoded: [UInt8] = []
        JSONValue.array(frames.map(JSONRenderer.frameJSON)).encode(into: &encoded)
        let json = JSONValue.encodedJSON(encoded)
        if objects.count < limit { objects[key] = (frames, json) }
        return json
    }

    func bytesText(_ ip: UInt64, _ instruction: [UInt8]) -> String {
        if let hit = bytes[ip], hit.bytes == instruction { return hit.text }
        let text = CowtraceCore.bytesText(instruction)
        if bytes.count < limit { bytes[ip] = (instruction, text) }
        return text
    }
}
