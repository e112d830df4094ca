@testable import CowtraceCore
import Glibc
import Testing

/// The renderers write a split's line straight as bytes, with what an instruction's splits
/// share formatted once and the last backtrace recognised by identity. These hold that hot
/// path to the general one: the --json lines equal the general encoder's objects, and the
/// text lines equal `describe` without any cache, whatever order the splits come in. Drops
/// (a line per page) likewise.
@Suite struct SplitRenderingTests {
    static let frames = JSONEventRoundTripTests.frames
    /// Same addresses, another frame #0 name and line (the code at that address was replaced).
    static let otherFrames = [
        BacktraceFrame(ip: 0x401136, symbol: "other", offset: 0x4, module: "/tmp/fixture2", moduleOffset: 0x1136, source: "other.c:3"),
        frames[1],
    ]

    static func split(page: UInt64, address: UInt64, ip: UInt64 = 0x401136, text: String = "movq %rax, (%rdi)", size: Int = 8,
                      backtrace: [BacktraceFrame], huge: Bool? = nil, frameBefore: UInt64 = 0x1234, others: [pid_t] = [40, 42]) -> Split {
        var s = Split(page: page, region: "/tmp/fixture \"data\"", kind: .anon, writer: 41, others: others,
                      frameBefore: frameBefore, frameAfter: frameBefore == 0 ? 0 : 0x5678,
                      cause: .instruction(InstructionWrite(ip: ip, bytes: [0x48, 0x89, 0x07], text: text, address: address, size: size)),
                      engine: .record)
        s.backtrace = backtrace
        s.hugePage = huge
        return s
    }

    static var splits: [Split] {
        let shared = frames  // one array for several splits, as the symbolizer hands them out
        return [
            split(page: 0x7000_0000, address: 0x7000_0010, backtrace: shared, huge: true),
            split(page: 0x7000_1000, address: 0x7000_1010, backtrace: shared),
            split(page: 0x7000_2000, address: 0x7000_2ff8, backtrace: frames.map { $0 }, huge: false),
            split(page: 0x7000_3000, address: 0x7000_3000, backtrace: otherFrames),
            split(page: 0x7000_4000, address: 0x7000_4000, text: "movb $2, (%rax)", size: 1, backtrace: otherFrames),
            split(page: 0x7000_5000, address: 0x7000_5008, backtrace: []),
            split(page: 0x7000_6000, address: 0x7000_6008, backtrace: shared, frameBefore: 0, others: []),
            split(page: 0x7000_7000, address: 0x7000_7008, ip: 0x401200, backtrace: [frames[1]]),
        ] + JSONEventRoundTripTests.events.compactMap { if case .split(let s) = $0 { s } else { nil } }
    }

    /// What `body` writes through a sink, read back.
    static func written(_ body: (OutputSink) -> Void) throws -> String {
        var name = Array("/tmp/cowtrace-render-XXXXXX".utf8CString)
        let fd = mkstemp(&name)
        #expect(fd >= 0)
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        let sink = OutputSink(fd: fd)
        body(sink)
        sink.flush()
        close(fd)
        return try RunLogReader.readFile(path)
    }

    static func withoutTimes(_ line: Substring) -> String {
        String(line.replacing(/"time_us":[0-9]+/, with: "\"time_us\":T"))
    }

    static var drops: [TraceEvent] {
        [.drop(Drop(pid: 41, pages: [Drop.Page(page: 0x7000_2000, region: "anon", frame: 0x98),
                                     Drop.Page(page: 0x7000_3000, region: "/tmp/a \"b\"", frame: 0)], reason: "exit")),
         .drop(Drop(pid: 40, pages: [], reason: "munmap"))]
    }

    @Test func jsonLinesEqualTheGeneralEncoding() throws {
        let events = Self.splits.map { TraceEvent.split($0) } + Self.drops
        let fast = try Self.written { sink in
            let renderer = JSONRenderer(sink: sink)
            for event in events { renderer.render(event, tracees: 2) }
            renderer.flush()
        }
        var encoder = JSONEventEncoder()
        var general: [String] = []
        for event in events {
            encoder.encode(event) { kind, fields in general.append(JSONValue.object([("event", .string(kind))] + fields).encoded()) }
        }
        let fastLines = fast.split(separator: "\n").map(Self.withoutTimes)
        #expect(fastLines == general.map { Self.withoutTimes($0[...]) })
        #expect(fastLines.count == general.count)
    }

    @Test func textLinesEqualTheUncachedDescription() throws {
        let fast = try Self.written { sink in
            let renderer = TextRenderer(sink: sink, detail: .quiet)
            for s in Self.splits { renderer.render(.split(s), tracees: 2) }
            renderer.flush()
        }
        var printed: [[BacktraceFrame]] = []
        var expected = ""
        for s in Self.splits {
            let repeated = s.backtrace.count > 1 && printed.contains(s.backtrace)
            if !printed.contains(s.backtrace) { printed.append(s.backtrace) }
            expected += "[pid    41] " + TextRenderer.describe(s, formats: nil, repeated: repeated) + "\n"
        }
        #expect(fast == expected)
        #expect(fast.contains("<other+4> other.c:3  movb $2, (%rax)  (1 byte at 0x70004000)"))
        #expect(fast.contains("<store+16> fixture.c:12  movq %rax, (%rdi)  (8 bytes at 0x70001010); frame 0x1234 -> 0x5678"))
    }

    /// The text log rendered on a thread of its own writes the very bytes the renderer writes
    /// in line, over several hand-overs, with a flush between (the 250 ms tick) and with none
    /// at the end: the thread's last batch is written when the renderer goes away.
    @Test func backgroundRenderingWritesTheSameBytes() throws {
        let events = (0..<(BackgroundRenderer.batchSize * 3 + 7)).map { i in
            TraceEvent.split(Self.splits[i % Self.splits.count])
        } + [.note("the last line")]
        let direct = try Self.written { sink in
            let renderer = TextRenderer(sink: sink, detail: .quiet)
            for (i, event) in events.enumerated() { renderer.render(event, tracees: i < 5 ? 1 : 2) }
            renderer.flush()
        }
        var flushedEarly = ""
        let threaded = try Self.written { sink in
            var renderer: (any EventRenderer)? = BackgroundRenderer.wrapping(TextRenderer(sink: sink, detail: .quiet))
            #expect(renderer is BackgroundRenderer)
            for (i, event) in events.enumerated() {
                renderer?.render(event, tracees: i < 5 ? 1 : 2)
                if i == BackgroundRenderer.batchSize + 3 {
                    renderer?.flush()
                    flushedEarly = (try? RunLogReader.readFile("/proc/self/fd/\(sink.fd)")) ?? ""
                }
            }
            renderer = nil
        }
        #expect(threaded == direct)
        #expect(threaded.hasSuffix("cowtrace: the last line\n"))
        // Everything handed over before the flush was in the file when it returned.
        #expect(flushedEarly.split(separator: "\n").filter { $0.contains("cow: split") }.count == BackgroundRenderer.batchSize + 4)
    }
}
