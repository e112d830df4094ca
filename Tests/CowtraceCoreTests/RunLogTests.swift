@testable import CowtraceCore
import Glibc
import Testing

/// Reading a saved `--json` log back (parser, typed model) and the renderers over the model,
/// on hand-written logs (no process involved).
@Suite struct RunLogTests {
    static let frameMain = #"{"ip":"0x401136","symbol":"store_page","offset":16,"module":"/tmp/demo","module_offset":"0x1136","source":"demo.c:7"}"#
    static let frameOuter = #"{"ip":"0x401190","symbol":"main","offset":32,"module":"/tmp/demo","module_offset":"0x1190","source":"demo.c:20"}"#
    static let frameStripped = #"{"ip":"0x7f0000001234","symbol":null,"offset":null,"module":"/usr/lib/libruby.so.3.1","module_offset":"0x1234","source":null}"#

    static func split(writer: Int, page: String, stack: String) -> String {
        #"{"event":"split","page":"\#(page)","region":"[heap]","kind":"anon","writer":\#(writer),"others":[100],"frame_before":"0x10","frame_after":"0x20","cause":"instruction","detail":null,"ip":"0x401136","instruction":"movb $2, (%rax)","bytes":"c6 00 02","address":"\#(page)","size":1,"syscall":null,"clone_flag":null,"symbol":"store_page+0x10","source":"demo.c:7",\#(stack),"note":null,"engine":"fault"}"#
    }

    /// The same run written the old way (backtraces inline) and the new way (a stack table).
    static var inlineLog: String {
        [
            #"{"event":"shared","pid":100,"child":101,"syscall":"clone","anon":3,"file":0,"zero":0}"#,
            #"{"event":"clone","pid":100,"child":101,"syscall":"clone","flags":["CLONE_CHILD_CLEARTID","CLONE_CHILD_SETTID"],"exit_signal":"SIGCHLD","child_tidptr":"0x7f00a10","parent_tid":null,"shares_memory":false,"shared_pages":3}"#,
            #"{"event":"split","page":"0x7f0000000000","region":"anon","kind":"anon","writer":101,"others":[100],"frame_before":"0x1","frame_after":"0x2","cause":"clone","detail":null,"ip":null,"instruction":null,"bytes":null,"address":"0x7f00a10","size":4,"syscall":null,"clone_flag":"CLONE_CHILD_SETTID","symbol":null,"source":null,"backtrace":[],"note":null,"engine":"fault"}"#,
            split(writer: 101, page: "0x405000", stack: #""backtrace":[\#(frameMain),\#(frameOuter)]"#),
            split(writer: 101, page: "0x406000", stack: #""backtrace":[\#(frameMain),\#(frameOuter)]"#),
            split(writer: 100, page: "0x407000", stack: #""backtrace":[\#(frameStripped),\#(frameOuter)]"#),
            #"{"event":"reuse","pid":100,"page":"0x406000","region":"[heap]","frame":"0x10","ip":null}"#,
            #"{"event":"drop","pid":101,"page":"0x408000","region":"[heap]","frame":"0x30","reason":"exit"}"#,
            #"{"event":"exit","pid":101,"status":0,"signal":null}"#,
            #"{"event":"summary","engine":"fault","steps":0,"faults":7,"splits":4,"reuses":1,"drops":1,"still_shared":0}"#,
        ].joined(separator: "\n") + "\n"
    }

    static var tableLog: String {
        [
            #"{"event":"process","pid":100,"program":"/tmp/demo"}"#,
            #"{"event":"process","pid":101,"program":"/tmp/demo"}"#,
            #"{"event":"shared","pid":100,"child":101,"syscall":"clone","anon":3,"file":0,"zero":0,"time_us":10}"#,
            #"{"event":"split","page":"0x7f0000000000","region":"anon","kind":"anon","writer":101,"others":[100],"frame_before":"0x1","frame_after":"0x2","cause":"clone","detail":null,"ip":null,"instruction":null,"bytes":null,"address":"0x7f00a10","size":4,"syscall":null,"clone_flag":"CLONE_CHILD_SETTID","symbol":null,"source":null,"stack":0,"note":null,"engine":"fault","time_us":20}"#,
            #"{"event":"stack","id":1,"frames":[\#(frameMain),\#(frameOuter)]}"#,
            split(writer: 101, page: "0x405000", stack: #""stack":1"#),
            split(writer: 101, page: "0x406000", stack: #""stack":1"#),
            #"{"event":"stack","id":2,"frames":[\#(frameStripped),\#(frameOuter)]}"#,
            split(writer: 100, page: "0x407000", stack: #""stack":2"#),
            #"{"event":"summary","engine":"fault","steps":0,"faults":7,"splits":4,"reuses":0,"drops":0,"still_shared":0}"#,
        ].joined(separator: "\n") + "\n"
    }

    @Test func parserKeepsOrderAndDecodesEscapes() throws {
        let value = try JSONParser.parse(#" {"b":1,"a":[true,false,null,-12],"s":"x\"\\\/\n\u00e9\ud83d\ude00"} "#)
        guard case .object(let fields) = value else { Issue.record("not an object"); return }
        #expect(fields.map(\.0) == ["b", "a", "s"])
        #expect(value["a"] == .array([.bool(true), .bool(false), .null, .int(-12)]))
        #expect(value["s"]?.stringValue == "x\"\\/\né😀")
        // What the encoder writes, the parser reads back.
        let original = JSONValue.object([("k", .string("tab\t\"q\"")), ("n", .int(Int64.min + 1)), ("h", .hex(0xdeadbeef))])
        #expect(try JSONParser.parse(original.encoded())["h"]?.hexValue == 0xdeadbeef)
        #expect(try JSONParser.parse(original.encoded())["k"]?.stringValue == "tab\t\"q\"")
    }

    @Test func parserRejectsWhatIsNotJSON() {
        for bad in ["", "{", #"{"a":}"#, #"{"a":1,}"#, "[1 2]", #""open"#, "nul", "{} x", #"{'a':1}"#, "\"a\u{1}\""] {
            #expect(throws: CowtraceError.self, "\(bad)") { try JSONParser.parse(bad) }
        }
    }

    @Test func inlineBacktracesAndStackTableGiveTheSameModel() throws {
        let old = try RunLogReader.read(text: Self.inlineLog)
        let new = try RunLogReader.read(text: Self.tableLog)
        #expect(old.splits.count == 4 && new.splits.count == 4)
        for (a, b) in zip(old.splits, new.splits) {
            #expect(old.stacks[a.stack] == new.stacks[b.stack])
            #expect(a.page == b.page && a.writer == b.writer && a.cause == b.cause && a.ip == b.ip)
        }
        #expect(old.stacks[old.splits[1].stack].map(\.symbol) == ["store_page", "main"])
        #expect(old.splits[1].stack == old.splits[2].stack)  // interned once
        #expect(old.shares == [RunLog.Share(parent: 100, child: 101, call: "clone", anon: 3, file: 0, zero: 0)])
        #expect(old.clones.first?.flags == ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"])
        #expect(old.reuses.count == 1 && old.drops.count == 1 && old.exits == [RunLog.Exit(pid: 101, status: 0, signal: nil)])
        #expect(old.totals?.faults == 7)
        #expect(new.programName(101) == "demo" && old.programName(101) == "pid")
        #expect(new.splits[1].time == nil && new.splits[0].time == 20)
        #expect(CowSummary(old).topFunctions == CowSummary(new).topFunctions)
    }

    @Test func aLineThatIsNotCowtraceJSONIsNamed() {
        let text = Self.tableLog.split(separator: "\n").prefix(3).joined(separator: "\n") + "\nclone(child_stack=NULL) = 5\n"
        #expect { try RunLogReader.read(text: text) } throws: { error in
            (error as? CowtraceError)?.message.hasPrefix("line 4 is not cowtrace JSON") == true
        }
        #expect { try RunLogReader.read(text: #"{"pid":1}"#) } throws: { error in
            (error as? CowtraceError)?.message == #"line 1 is not cowtrace JSON: not a cowtrace event (no "event" field)"#
        }
        #expect { try RunLogReader.read(text: #"{"event":"split","page":"0x1000"}"#) } throws: { error in
            (error as? CowtraceError)?.message == #"line 1 is not cowtrace JSON: split event without a valid "writer""#
        }
        #expect { try RunLogReader.read(text: #"{"event":"split","page":"0x1000","writer":1,"cause":"instruction","stack":9}"#) } throws: { error in
            (error as? CowtraceError)?.message.contains("stack 9 before its stack event") == true
        }
    }

    @Test func foldedStacksCountEverySplit() throws {
        let log = try RunLogReader.read(text: Self.tableLog)
        let folded = FoldedStacks.render(log)
        #expect(folded == """
            demo-100;main;libruby.so.3.1+0x1234 1
            demo-101;[clone CLONE_CHILD_SETTID] 1
            demo-101;main;store_page 2

            """)
        let total = folded.split(separator: "\n").map { Int($0.split(separator: " ").last!)! }.reduce(0, +)
        #expect(total == log.splits.count)
    }

    @Test func speedscopeHasTheFormatsRequiredFields() throws {
        let log = try RunLogReader.read(text: Self.tableLog)
        let file = try JSONParser.parse(SpeedscopeProfile.render(log))
        #expect(file["$schema"]?.stringValue == "https://www.speedscope.app/file-format-schema.json")
        let frames = try #require(file["shared"]?["frames"]?.arrayValue)
        #expect(frames.allSatisfy { $0["name"]?.stringValue != nil })
        let profiles = try #require(file["profiles"]?.arrayValue)
        #expect(profiles.map { $0["name"]?.stringValue } == ["demo pid 101", "demo pid 100"])
        var weights: Int64 = 0
        for profile in profiles {
            #expect(profile["type"]?.stringValue == "sampled" && profile["unit"]?.stringValue == "bytes")
            let samples = try #require(profile["samples"]?.arrayValue)
            let w = try #require(profile["weights"]?.arrayValue)
            #expect(samples.count == w.count)
            #expect(profile["startValue"]?.intValue == 0)
            #expect(profile["endValue"]?.intValue == w.compactMap(\.intValue).reduce(0, +))
            for sample in samples {
                #expect(sample.arrayValue!.allSatisfy { ($0.intValue ?? -1) >= 0 && $0.intValue! < frames.count })
            }
            weights += w.compactMap(\.intValue).reduce(0, +)
        }
        #expect(weights == 4096 * Int64(log.splits.count))
        // Outermost first, with file and line.
        let child = profiles[0]["samples"]!.arrayValue![1].arrayValue!.map { frames[Int($0.intValue!)] }
        #expect(child.map { $0["name"]?.stringValue } == ["main", "store_page"])
        #expect(child.last?["file"]?.stringValue == "demo.c" && child.last?["line"]?.intValue == 7)
    }

    @Test func summaryNamesBytesProcessesModulesAndPaths() throws {
        let lines = CowSummary(try RunLogReader.read(text: Self.tableLog)).textLines()
        #expect(lines.contains("  clone 100 -> 101: 3 pages shared, 12 KiB (anon 3, file 0, zero 0)"))
        #expect(lines.contains { $0.hasPrefix("  splits: 4 (") && $0.hasSuffix(", 16 KiB copied") })
        #expect(lines.contains("         3     12 KiB  demo pid 101 (child of 100)"))
        #expect(lines.contains("         1      4 KiB  demo pid 100 (parent)"))
        #expect(lines.contains("         1      4 KiB  libruby.so.3.1"))
        #expect(lines.contains("         1      4 KiB  libruby.so.3.1 [no symbols]"))
        #expect(lines.contains("         2      8 KiB  main → store_page"))
    }

    @Test func aRunThatDidNotFinishSaysSo() throws {
        let text = Self.tableLog.split(separator: "\n").filter { !$0.contains(#""event":"summary""#) }.joined(separator: "\n")
        let summary = CowSummary(try RunLogReader.read(text: text))
        #expect(summary.textLines().first == "cow summary (engine fault, no summary event: the run did not finish):")
        #expect(summary.splits == 4)
    }

    @Test func diffPutsTheBiggestChangeFirst() throws {
        let a = try RunLogReader.read(text: Self.tableLog)
        var b = a
        b.splits += Array(repeating: a.splits[3], count: 5)  // five more pages through libruby
        let diff = RunDiff(a, b)
        #expect(diff.functions.first == RunDiff.Row(name: "libruby.so.3.1+0x1234", a: 1, b: 6))
        #expect(diff.stacks.first == RunDiff.Row(name: "main → libruby.so.3.1+0x1234", a: 1, b: 6))
        #expect(diff.functions.dropFirst().allSatisfy { $0.change == 0 })
    }

    /// A live run's events through the encoder: a backtrace is written once, as a `stack`
    /// event, and the objects read back give every split its frames.
    @Test func encoderWritesEachBacktraceOnceAndTheModelReadsItBack() throws {
        let inner = BacktraceFrame(ip: 0x401136, symbol: "store_page", offset: 16, module: "/tmp/demo", moduleOffset: 0x1136, source: "demo.c:7")
        let outer = BacktraceFrame(ip: 0x401190, symbol: "main", offset: 32, module: "/tmp/demo", moduleOffset: 0x1190, source: "demo.c:20")
        let write = InstructionWrite(ip: 0x401136, bytes: [0xc6, 0x00, 0x02], text: "movb $2, (%rax)", address: 0x405000, size: 1)
        func split(_ page: UInt64, _ frames: [BacktraceFrame]) -> Split {
            Split(page: page, region: "[heap]", kind: .anon, writer: 101, others: [100], frameBefore: 1, frameAfter: 2,
                  cause: .instruction(write), engine: .fault, backtrace: frames)
        }
        var encoder = JSONEventEncoder()
        var lines: [String] = []
        let kernel = Split(page: 0x409000, region: "anon", kind: .anon, writer: 100, others: [101], frameBefore: 3, frameAfter: 4,
                           cause: .kernel(.rseq), engine: .fault)
        let splits = [split(0x405000, [inner, outer]), split(0x406000, [inner, outer]), split(0x407000, [outer]), split(0x408000, []), kernel]
        for event in splits {
            encoder.encode(.split(event)) { kind, fields in lines.append(JSONValue.object([("event", .string(kind))] + fields).encoded()) }
        }
        // (A process event may name pid 101, if such a process exists here.)
        let kinds = lines.map { (try? JSONParser.parse($0))?["event"]?.stringValue ?? "?" }.filter { $0 != "process" }
        #expect(kinds == ["stack", "split", "split", "stack", "split", "split", "split"])
        #expect(!lines.contains { $0.contains("\"backtrace\"") })
        let log = try RunLogReader.read(text: lines.joined(separator: "\n"))
        #expect(log.splits.map { log.stacks[$0.stack] } == [[inner, outer], [inner, outer], [outer], [], []])
        #expect(log.splits.map(\.page) == [0x405000, 0x406000, 0x407000, 0x408000, 0x409000])
        #expect(FoldedStacks.render(log).contains(";main;store_page 2\n"))

        // A live run's model takes the splits typed: the same values as read back from JSON.
        var live = RunLogBuilder()
        for s in splits { live.add(s, time: nil) }
        let typed = live.finish()
        #expect(typed.splits.count == log.splits.count)
        for (a, b) in zip(typed.splits, log.splits) {
            #expect(typed.stacks[a.stack] == log.stacks[b.stack])
            #expect(a.page == b.page && a.region == b.region && a.kind == b.kind && a.writer == b.writer && a.others == b.others)
            #expect(a.frameBefore == b.frameBefore && a.frameAfter == b.frameAfter && a.cause == b.cause && a.detail == b.detail)
            #expect(a.ip == b.ip && a.instruction == b.instruction && a.address == b.address && a.size == b.size)
            #expect(a.syscall == b.syscall && a.cloneFlag == b.cloneFlag && a.symbol == b.symbol && a.source == b.source)
            #expect(a.note == b.note && a.engine == b.engine)
        }
        #expect(CowSummary(typed).textLines() == CowSummary(log).textLines())
    }

    /// The page map's cells: copied by the parent (1) or by a child (2), reused (3), dropped (4).
    @Test func pageMapNamesWhoCopiedEachPage() throws {
        let log = try RunLogReader.read(text: Self.inlineLog)
        let maps = PageMapData.build(log)
        let list = try #require(maps["list"]?.arrayValue)
        let heap = try #require(list.first { $0["region"]?.stringValue == "[heap]" })
        let pageValues = try #require(heap["pages"]?.arrayValue)
        #expect(pageValues.map { $0.stringValue } == ["0x405000", "0x406000", "0x407000", "0x408000"])
        let eventValues = try #require(heap["events"]?.arrayValue)
        let events = eventValues.map { event in (event.arrayValue ?? []).map { $0.intValue ?? -1 } }
        // [page row, time, state]: the child (101) copies 0x405000 and 0x406000, the parent
        // 0x407000; the parent's last frame of 0x406000 is reused; 0x408000 leaves the child.
        #expect(Set(events.map { [$0[0], $0[2]] }) == [[0, 2], [1, 2], [2, 1], [1, 3], [3, 4]])
        #expect(maps["unit"]?.stringValue == "event", "no time_us in this log: the event order is the time axis")
    }

    @Test func byteCounts() {
        #expect(ByteCount.text(pages: 1) == "4 KiB")
        #expect(ByteCount.text(pages: 2000) == "7.8 MiB")
        #expect(ByteCount.text(pages: 256) == "1 MiB")
        #expect(ByteCount.text(pages: 47000) == "184 MiB")
        #expect(ByteCount.text(bytes: 100) == "100 B")
    }

    @Test func htmlIsSelfContained() throws {
        let html = HTMLReport.render(try RunLogReader.read(text: Self.tableLog), title: "t </script> <b>")
        #expect(!html.contains("http://") && !html.contains("https://"))
        #expect(!html.contains("<link") && !html.contains(" src="))
        #expect(html.ranges(of: "</script>").count == 2)  // only the two script elements close
    }
}
