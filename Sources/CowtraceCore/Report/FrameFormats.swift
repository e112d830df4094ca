/// Backtraces and instruction bytes already formatted once: a loop copying page after page
/// repeats them split after split. Keyed by addresses (cheap to hash), checked for equality;
/// the last backtrace is also recognised by identity (the symbolizer hands a loop's splits
/// one array), which costs nothing.
final class FrameFormats {
    private var texts: [[UInt64]: (frames: [BacktraceFrame], source: String?, text: String)] = [:]
    private var objects: [[UInt64]: (frames: [BacktraceFrame], json: JSONValue)] = [:]
    private var bytes: [UInt64: (bytes: [UInt8], text: String)] = [:]
    private var instructions: [UInt64: (write: InstructionWrite, top: BacktraceFrame?, text: [UInt8])] = [:]
    private var repeated: [[UInt64]: (frames: [BacktraceFrame], text: [UInt8])] = [:]
    private var lastText: (frames: [BacktraceFrame], source: String?, text: String)?
    private var lastObject: (frames: [BacktraceFrame], json: JSONValue)?
    private let limit = 4096

    func backtraceText(_ frames: [BacktraceFrame], sourceText: String?) -> String {
        if let last = lastText, sameStorage(last.frames, frames), last.source == sourceText { return last.text }
        let key = frames.map(\.ip)
        if let hit = texts[key], hit.source == sourceText, hit.frames == frames {
            lastText = (frames, sourceText, hit.text)
            return hit.text
        }
        let text = TextRenderer.backtraceText(frames, sourceText: sourceText)
        if texts.count < limit { texts[key] = (frames, sourceText, text) }
        lastText = (frames, sourceText, text)
        return text
    }

    /// "#0-#N as above: …" for a backtrace printed in full before, appended straight from the
    /// cache (a returned array costs a retain and release per split).
    func appendRepeatedText(_ frames: [BacktraceFrame], into out: inout [UInt8]) {
        if !sameStorage(lastRepeatedFrames, frames) {
            (lastRepeatedFrames, lastRepeatedText) = (frames, repeatedTextLookedUp(frames))
        }
        lastRepeatedText.withUnsafeBufferPointer { out.append(contentsOf: $0) }
    }

    /// What the splits of one instruction share in the text log, up to the address written.
    /// `frames` (the split's backtrace) lets the last one be recognised without comparing
    /// frame #0's strings.
    func appendInstructionText(_ w: InstructionWrite, frames: [BacktraceFrame], into out: inout [UInt8]) {
        if !(w.ip == lastInstructionIP && w.size == lastInstructionSize && sameStorage(frames, lastInstructionFrames)
            && w.text == lastInstructionString) {
            let text = instructionTextLookedUp(w, top: frames.first)
            (lastInstructionIP, lastInstructionSize, lastInstructionFrames) = (w.ip, w.size, frames)
            (lastInstructionString, lastInstructionText) = (w.text, text)
        }
        lastInstructionText.withUnsafeBufferPointer { out.append(contentsOf: $0) }
    }

    private var lastRepeatedFrames: [BacktraceFrame] = []
    private var lastRepeatedText: [UInt8] = []

    /// Past the last one (recognised by the callers above): the table, else formatted now.
    private func repeatedTextLookedUp(_ frames: [BacktraceFrame]) -> [UInt8] {
        let key = frames.map(\.ip)
        if let hit = repeated[key], hit.frames == frames { return hit.text }
        let text = Array(TextRenderer.repeatedText(frames).utf8)
        if repeated.count < limit { repeated[key] = (frames, text) }
        return text
    }

    private var lastInstructionIP: UInt64 = 0
    private var lastInstructionSize = -1
    private var lastInstructionFrames: [BacktraceFrame] = []
    private var lastInstructionString = ""
    private var lastInstructionText: [UInt8] = []

    private func instructionTextLookedUp(_ w: InstructionWrite, top: BacktraceFrame?) -> [UInt8] {
        if let hit = instructions[w.ip], hit.write.text == w.text, hit.write.size == w.size, hit.top == top { return hit.text }
        let text = Array(TextRenderer.instructionText(w, top: top).utf8)
        if instructions.count < limit { instructions[w.ip] = (w, top, text) }
        return text
    }

    func backtraceJSON(_ frames: [BacktraceFrame]) -> JSONValue {
        if let last = lastObject, sameStorage(last.frames, frames) { return last.json }
        let key = frames.map(\.ip)
        if let hit = objects[key], hit.frames == frames {
            lastObject = hit
            return hit.json
        }
        var encoded: [UInt8] = []
        JSONValue.array(frames.map(JSONRenderer.frameJSON)).encode(into: &encoded)
        let json = JSONValue.encodedJSON(encoded)
        if objects.count < limit { objects[key] = (frames, json) }
        lastObject = (frames, json)
        return json
    }

    func bytesText(_ ip: UInt64, _ instruction: [UInt8]) -> String {
        if let hit = bytes[ip], hit.bytes == instruction { return hit.text }
        let text = CowtraceCore.bytesText(instruction)
        if bytes.count < limit { bytes[ip] = (instruction, text) }
        return text
    }
}
