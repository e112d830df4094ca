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

    /// A log longer than a buffer is written in line (a file, the default) or by the sink's own
    /// thread (a pipe, here forced on a file): the very bytes the renderer produced, in order,
    /// with a flush between (the 250 ms tick: everything so far is in the file when it
    /// returns), and all of it once the sink goes away (the end of the run, an interruption).
    @Test(arguments: [false, true]) func aSinkWritesTheSameBytes(onThread: Bool) throws {
        let splits = (0..<6000).map { i in Self.splits[i % Self.splits.count] }
        var printed: [[BacktraceFrame]] = []
        var expected = ""
        for s in splits {
            let repeated = s.backtrace.count > 1 && printed.contains(s.backtrace)
            if !printed.contains(s.backtrace) { printed.append(s.backtrace) }
            expected += "[pid    41] " + TextRenderer.describe(s, formats: nil, repeated: repeated) + "\n"
        }
        #expect(expected.utf8.count > 3 * OutputSink.flushSize)
        var name = Array("/tmp/cowtrace-writer-XXXXXX".utf8CString)
        let fd = mkstemp(&name)
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { unlink(path) }
        var sink: OutputSink? = OutputSink(fd: fd, owns: true, onThread: onThread ? true : nil)
        var renderer: TextRenderer? = TextRenderer(sink: sink!, detail: .quiet)
        var flushedEarly = "", threadedEarly = false
        for (i, s) in splits.enumerated() {
            renderer?.render(.split(s), tracees: 2)
            if i == 4000 {
                renderer?.flush()
                threadedEarly = sink?.threaded == true
                flushedEarly = (try? RunLogReader.readFile(path)) ?? ""
            }
        }
        renderer = nil
        sink = nil  // no flush of ours: the sink's end writes what is left
        #expect(threadedEarly == onThread)
        #expect(flushedEarly.split(separator: "\n").filter { $0.contains("cow: split") }.count == 4001)
        #expect(expected.hasPrefix(flushedEarly))
        #expect(try RunLogReader.readFile(path) == expected)
    }

    /// Only a pipe or socket gets a writing thread (its reader sets the pace); a file or a
    /// device is written in line, so the tracer stays one thread (a second one slows every
    /// system call and allocation of its own).
    @Test func onlyPipesAndSocketsAreWrittenOnAThread() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(OutputSink.writesOnThread(fds[1]))
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        #expect(OutputSink.writesOnThread(pair[0]))
        let null = open("/dev/null", O_WRONLY)
        defer { close(null) }
        #expect(!OutputSink.writesOnThread(null))
        var name = Array("/tmp/cowtrace-inline-XXXXXX".utf8CString)
        let file = mkstemp(&name)
        defer { close(file); unlink(String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        #expect(!OutputSink.writesOnThread(file))
    }

    /// A write that fails, in line or on the sink's thread, is said at the end.
    @Test(arguments: [false, true]) func aWriteErrorIsSaid(onThread: Bool) throws {
        let fd = open("/dev/full", O_WRONLY | O_CLOEXEC)
        #expect(fd >= 0)
        let sink = OutputSink(fd: fd, owns: true, name: "/dev/full", onThread: onThread ? true : nil)
        let line = Array(String(repeating: "x", count: 999).utf8) + [10]
        for _ in 0..<(3 * OutputSink.flushSize / line.count) { sink.write(bytes: line) }
        #expect(sink.threaded == onThread)
        #expect(sink.failure == "write to /dev/full failed: No space left on device (ENOSPC)")
    }

    /// The summary (and --summary-only) keeps counts by what is distinct (stacks,
    /// instructions, writers), never the splits themselves: 40,000 splits of two stacks leave
    /// two stacks and one instruction in the model. Report files ask for the events, and
    /// only then are they kept.
    @Test func summaryKeepsWhatIsDistinctNotEverySplit() {
        func feed(_ collector: SummaryCollector) {
            for i in 0..<40_000 {
                // A fresh array each time, as from different symbolizer calls.
                let frames = (i % 2 == 0 ? Self.frames : Self.otherFrames).map { $0 }
                let page = 0x7000_0000 + UInt64(i) * 4096
                collector.render(.split(Self.split(page: page, address: page + 8, backtrace: frames)), tracees: 2)
                if i % 1000 == 0 {
                    collector.render(.drop(Drop(pid: 40, pages: [Drop.Page(page: page, region: "anon", frame: 0x98)], reason: "exit")), tracees: 2)
                }
            }
        }
        let summary = SummaryCollector()
        feed(summary)
        let log = summary.runLog
        #expect(log.tally.splits == 40_000)
        #expect(log.tally.drops == 40)
        #expect(log.splits.isEmpty && log.drops.isEmpty && log.reuses.isEmpty)
        #expect(log.stacks.count == 3)  // none, and the two
        #expect(log.tally.instructions.count == 1)
        #expect(log.tally.pathsByStack.count == 2)
        #expect(log.tally.causes.count == 1)
        let text = summary.final(engine: .fault, steps: 0, faults: 40_000, stillShared: 0).textLines().joined(separator: "\n")
        #expect(text.contains("splits: 40000"), "\(text)")

        let keeping = SummaryCollector()
        keeping.keepEvents()
        feed(keeping)
        #expect(keeping.runLog.splits.count == 40_000)
    }
}
