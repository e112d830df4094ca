@testable import CowtraceCore
import Glibc
import Testing

/// The JSON log reads back into the TraceEvent values it was written from: encoded as the
/// --json log writes them, parsed as a saved log is parsed, decoded, and compared.
@Suite struct JSONEventRoundTripTests {
    static let frames = [
        BacktraceFrame(ip: 0x401136, symbol: "store", offset: 0x10, module: "/tmp/fixture", moduleOffset: 0x1136, source: "fixture.c:12"),
        BacktraceFrame(ip: 0x401180, symbol: nil, offset: nil, module: "/usr/lib/libx.so", moduleOffset: 0x80, source: nil),
    ]

    static func split(_ cause: SplitCause, backtrace: [BacktraceFrame] = [], huge: Bool? = nil) -> Split {
        var s = Split(page: 0x7000_0000, region: "[heap]", kind: .anon, writer: 41, others: [40, 42],
                      frameBefore: 0x1234, frameAfter: 0x5678, cause: cause, engine: .fault)
        s.backtrace = backtrace
        s.hugePage = huge
        return s
    }

    static var events: [TraceEvent] {
        var masked = InstructionWrite(ip: 0x401136, bytes: [0x62, 0xf1, 0x7f, 0x29, 0x7f, 0x00], text: "vmovdqu8 %zmm0, (%rax) {%k1}",
                                      address: 0x7000_0010, size: 12)
        masked.ranges = [WriteRange(address: 0x7000_0010, size: 4), WriteRange(address: 0x7000_0020, size: 8)]
        return [
            .syscall(SyscallRecord(tid: 40, name: "read", entryText: "3, \"hello\", 16", exitText: "", result: "5", ret: 5, errno: nil)),
            .syscall(SyscallRecord(tid: 40, name: "openat", entryText: "AT_FDCWD, \"/x) = y\", O_RDONLY", exitText: "",
                                   result: "-1 ENOENT (No such file or directory)", ret: -1, errno: "ENOENT")),
            .clone(CloneRecord(pid: 40, child: 41, syscall: "clone", flags: ["CLONE_CHILD_CLEARTID", "CLONE_CHILD_SETTID"],
                               exitSignal: "SIGCHLD", childTidPointer: 0x7f00_0a10, parentTid: nil, sharesMemory: false, sharedPages: 17)),
            .shared(SharedPages(parent: 40, child: 41, call: "clone", anon: 15, file: 1, zero: 1)),
            .split(split(.instruction(masked), backtrace: frames, huge: true)),
            .split(split(.instruction(InstructionWrite(ip: 0x401136, bytes: [0x48, 0x89, 0x07], text: "movq %rax, (%rdi)",
                                                       address: 0x7000_0040, size: 8)), backtrace: frames)),
            .split(split(.syscall(SyscallCall(name: "read", line: "read(3, \"hello\", 16) = 5")))),
            .split(split(.clone(.childSetTID, pointer: 0x7000_0a10))),
            .split(split(.kernel(.rseq))),
            .split(split(.kernel(nil))),
            .split(split(.unknown(note: "frames hidden: 40 saw it change too"), huge: false)),
            .reuse(Reuse(pid: 40, page: 0x7000_1000, region: "[stack]", frame: 0x99, ip: 0x401200)),
            .drop(Drop(pid: 41, pages: [Drop.Page(page: 0x7000_2000, region: "anon", frame: 0x98)], reason: "munmap")),
            .exit(ExitRecord(tid: 41, isLeader: true, how: .exited(code: 0))),
            .exit(ExitRecord(tid: 40, isLeader: true, how: .killed(signal: SIGKILL, coreDumped: false))),
            .note("engine fault (perf page-fault events with sigtrap)"),
        ]
    }

    /// Each event as the log's lines, parsed back from text.
    static func lines(_ events: [TraceEvent]) throws -> [JSONValue] {
        var encoder = JSONEventEncoder()
        var objects: [JSONValue] = []
        for event in events {
            encoder.encode(event) { kind, fields in objects.append(.object([("event", .string(kind))] + fields)) }
        }
        return try objects.map { try JSONParser.parse($0.encoded()) }
    }

    @Test func everyEventComesBackAsItWas() throws {
        var decoder = JSONEventDecoder()
        let decoded = try Self.lines(Self.events).compactMap { try decoder.decode($0) }
        #expect(decoded.count == Self.events.count)
        for (original, back) in zip(Self.events, decoded) {
            switch (original, back) {
            case let (.syscall(a), .syscall(b)): #expect(a == b)
            case let (.clone(a), .clone(b)): #expect(a == b)
            case let (.shared(a), .shared(b)): #expect(a == b)
            case let (.split(a), .split(b)): #expect(a == b)
            case let (.reuse(a), .reuse(b)): #expect(a == b)
            case let (.drop(a), .drop(b)): #expect(a == b)
            case let (.exit(a), .exit(b)): #expect(a == b)
            case let (.note(a), .note(b)): #expect(a == b)
            default: Issue.record("\(original) came back as \(back)")
            }
        }
    }

    @Test func repeatedBacktraceIsWrittenOnceAndResolved() throws {
        let events: [TraceEvent] = [.split(Self.split(.kernel(nil), backtrace: Self.frames)), .split(Self.split(.kernel(nil), backtrace: Self.frames))]
        let lines = try Self.lines(events)
        #expect(lines.filter { $0["event"]?.stringValue == "stack" }.count == 1)
        var decoder = JSONEventDecoder()
        let back = try lines.compactMap { try decoder.decode($0) }
        for event in back {
            guard case .split(let s) = event else { Issue.record("not a split"); continue }
            #expect(s.backtrace == Self.frames)
        }
    }

    @Test func malformedLinesAreNamed() throws {
        var decoder = JSONEventDecoder()
        #expect(throws: CowtraceError.self) { try decoder.decode(.object([("pid", .int(1))])) }
        #expect(throws: CowtraceError.self) {
            try decoder.decode(.object([("event", .string("split")), ("page", .string("0x1000")), ("cause", .string("magic"))]))
        }
        #expect(throws: CowtraceError.self) {
            try decoder.decode(.object([("event", .string("syscall")), ("pid", .int(1)), ("name", .string("read")), ("text", .string("garbage"))]))
        }
    }
}
