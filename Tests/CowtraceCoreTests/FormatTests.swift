@testable import CowtraceCore
import Glibc
import Testing

@Suite struct StraceFormatTests {
    @Test func quotingLikeStrace() {
        #expect(StraceFormat.quoted(Array("hello\n".utf8), truncated: false) == #""hello\n""#)
        #expect(StraceFormat.quoted([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01], truncated: false) == #""\177ELF\2\1""#)
        // An octal escape followed by a digit is written with three digits.
        #expect(StraceFormat.quoted([0x01, 0x31], truncated: false) == #""\0011""#)
        #expect(StraceFormat.quoted(Array(repeating: 0x61, count: 40), truncated: false) == "\"" + String(repeating: "a", count: 32) + "\"...")
        #expect(StraceFormat.quoted(Array("\"\\".utf8), truncated: false) == #""\"\\""#)
    }

    /// Every width of the hex the logs write, against the standard library's.
    @Test func hexDigitsOfEveryWidth() {
        var values: [UInt64] = [0, 1, 9, 10, 15, 16, 0x7f00, .max]
        for shift in 0..<64 { values += [1 << UInt64(shift), (1 << UInt64(shift)) - 1, 0xa5a5_a5a5_a5a5_a5a5 >> UInt64(shift)] }
        for v in values {
            var out: [UInt8] = [0x3e]
            HexDigits.append(v, into: &out)
            #expect(String(decoding: out, as: UTF8.self) == ">0x" + String(v, radix: 16))
        }
    }

    @Test func flagsAndAddresses() {
        #expect(StraceFormat.address(0) == "NULL")
        #expect(StraceFormat.address(0x7f00) == "0x7f00")
        #expect(StraceFormat.flags(0x1200000, CloneFlags.cloneNames) == "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID")
        #expect(StraceFormat.flags(0x100 | 0x400000, CloneFlags.cloneNames) == "CLONE_VM|0x400000")
        #expect(MemoryDecoders.mapping(0x22) == "MAP_PRIVATE|MAP_ANONYMOUS")
        #expect(MemoryDecoders.protection(0) == "PROT_NONE")
    }

    @Test func cloneDecoding() {
        let request = CloneRequest.clone(arguments: [0x1200011, 0, 0, 0x7f00a10, 0, 0])
        #expect(request.flags == [.childSettid, .childCleartid])
        #expect(request.exitSignal == SIGCHLD)
        #expect(request.childTidPointer == 0x7f00a10)
        #expect(request.parentTidPointer == nil)
        #expect(!request.sharesMemory)
        var bytes = [UInt8](repeating: 0, count: 88)
        bytes[1] = 0x41  // flags = CLONE_VM|CLONE_VFORK (0x4100)
        bytes[32] = 17   // exit_signal
        let args = CloneArgs(bytes: bytes)
        #expect(args?.flags == 0x4100 && args?.exitSignal == 17)
        #expect(CloneArgs(bytes: [UInt8](repeating: 0, count: 40)) == nil)
    }

    @Test func resultsLikeStrace() {
        #expect(SyscallDecoders.result(.error(2), style: .decimal) == "-1 ENOENT (No such file or directory)")
        #expect(SyscallDecoders.result(.error(512), style: .decimal) == "? ERESTARTSYS (To be restarted if SA_RESTART is set)")
        #expect(SyscallDecoders.result(.value(0x7f00), style: .hex) == "0x7f00")
        #expect(SyscallDecoders.result(.noReturn, style: .decimal) == "?")
        #expect(SyscallTable.name(56) == "clone" && SyscallTable.name(435) == "clone3" && SyscallTable.name(9999) == "syscall_0x270f")
    }

    @Test func jsonEncoding() {
        let value = JSONValue.object([("a", .int(1)), ("b", .string("x\"y\n")), ("c", .null), ("d", .array([.bool(true)]))])
        #expect(value.encoded() == #"{"a":1,"b":"x\"y\n","c":null,"d":[true]}"#)
    }
}

/// The log's layout rules, written to a pipe and read back.
@Suite struct SyscallLogTests {
    func capture(_ body: (SyscallLog) -> Void) -> String {
        var fds: [Int32] = [0, 0]
        pipe(&fds)
        let sink = OutputSink(fd: fds[1])
        let log = SyscallLog(sink: sink)
        body(log)
        log.flush()
        close(fds[1])
        var out = [UInt8](repeating: 0, count: 65536)
        let n = read(fds[0], &out, out.count)
        close(fds[0])
        return String(decoding: out[0..<max(0, n)], as: UTF8.self)
    }

    @Test func alignsResultsAndInterleavesLikeStrace() {
        let text = capture { log in
            log.begin(tid: 10, name: "close", entry: "3")
            log.finish(tid: 10, name: "close", exit: "", result: "0")
            log.traceeCount = 2
            log.begin(tid: 10, name: "wait4", entry: "11, ")
            log.begin(tid: 11, name: "exit_group", entry: "0")
            log.finish(tid: 11, name: "exit_group", exit: "", result: "?")
            log.finish(tid: 10, name: "wait4", exit: "NULL, 0, NULL", result: "11")
        }
        #expect(text == """
            close(3)                                = 0
            [pid    10] wait4(11,  <unfinished ...>
            [pid    11] exit_group(0)               = ?
            [pid    10] <... wait4 resumed>NULL, 0, NULL) = 11

            """)
    }
}
