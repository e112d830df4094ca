import Foundation
import Testing

/// Backtraces, names, lines and disassembly at splits, checked against addr2line, objdump and gdb.
@Suite(.serialized) struct SymbolTests {
    /// objdump's "mnemonic operands" at `address`, without its comment, spaces after commas removed.
    static func objdumpInstruction(_ binary: String, at address: UInt64) throws -> String {
        let out = try Command.run(["/usr/bin/objdump", "-d", "--no-show-raw-insn", String(format: "--start-address=0x%llx", address),
                                   String(format: "--stop-address=0x%llx", address + 16), binary]).stdout
        let line = try #require(out.split(separator: "\n").first { $0.hasPrefix(String(format: "  %llx:", address)) })
        var text = String(line.split(separator: ":", maxSplits: 1)[1])
        if let hash = text.firstIndex(of: "#") { text = String(text[..<hash]) }
        return normalize(text)
    }

    static func normalize(_ text: String) -> String {
        text.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ").replacingOccurrences(of: ", ", with: ",")
    }

    /// Same mnemonic and operands; AT&T size suffixes that objdump leaves out when a register
    /// operand implies the size ("movq %rax,…" vs "mov %rax,…") do not count.
    static func sameInstruction(_ ours: String, _ objdump: String) -> Bool {
        let a = normalize(ours).split(separator: " ", maxSplits: 1).map(String.init)
        let b = objdump.split(separator: " ", maxSplits: 1).map(String.init)
        guard a.count == b.count, a.dropFirst() == b.dropFirst() else { return false }
        return a[0] == b[0] || (a[0].dropLast() == b[0] && "bwlq".contains(a[0].last!))
    }

    /// One store instruction reached from two callers: same ip, same depth, so an unwind that
    /// reused the previous one's frames would name the wrong caller. Frame #1's return
    /// address must lie in each caller (from nm), for both engines.
    @Test(arguments: ["fault", "step"])
    func sameStoreFromTwoCallers(_ engine: String) throws {
        let binary = try Fixtures.path("two_callers")
        let label = try Fixtures.symbol("shared_store", in: binary)
        for (page, caller) in [("first", "first_caller"), ("second", "second_caller")] {
            let run = try TraceRun.run(["--engine", engine, "-q"], [binary])
            let split = try #require(run.splits(onPage: pageOf(try Fixtures.symbol(page, in: binary))).first, "\(run.result.stderr)")
            #expect(hexValue(split["ip"]) == label)
            let frames = try #require(split["backtrace"] as? [[String: Any]])
            #expect(frames.count > 2 && frames[1]["symbol"] as? String == caller, "\(page): \(frames)")
            let start = try Fixtures.symbol(caller, in: binary)
            let returnAddress = try #require(hexValue(frames.count > 1 ? frames[1]["ip"] : nil))
            #expect(returnAddress > start && returnAddress < start + 64, "\(page): \(frames)")
        }
    }

    @Test func frameZeroMatchesAddr2lineAndObjdump() throws {
        let binary = try Fixtures.path("call_chain")
        let label = try Fixtures.symbol("chain_store", in: binary)
        let target = try Fixtures.symbol("target", in: binary)
        let run = try TraceRun.run(["-q"], [binary])
        #expect(run.result.status == 0)
        let split = try #require(run.splits(onPage: pageOf(target)).first, "\(run.result.stderr)")
        #expect(hexValue(split["ip"]) == label)

        let addr2line = try Command.run(["/usr/bin/addr2line", "-f", "-e", binary, String(format: "0x%llx", label)]).stdout
            .split(separator: "\n").map(String.init)
        let frames = try #require(split["backtrace"] as? [[String: Any]])
        #expect(frames.first?["symbol"] as? String == addr2line[0])
        #expect(frames.first?["source"] as? String == addr2line[1])
        #expect(split["source"] as? String == addr2line[1])
        #expect((split["symbol"] as? String)?.hasPrefix(addr2line[0] + "+0x") == true)
        #expect(hexValue(frames.first?["ip"]) == label)

        // The call chain, innermost first.
        let names = frames.compactMap { $0["symbol"] as? String }
        let writer = try #require(names.firstIndex(of: "writer_function"))
        #expect(names.firstIndex(of: "main") == writer + 1, "\(names)")
        #expect(frames.first?["module"] as? String == binary)
        #expect(hexValue(frames.first?["module_offset"]) == label - 0x400000)

        let objdump = try Self.objdumpInstruction(binary, at: label)
        #expect(Self.sameInstruction(split["instruction"] as! String, objdump), "\(split["instruction"]!) vs objdump \(objdump)")

        // The text log: function, file:line, the source line itself.
        #expect(run.result.stderr.contains("<writer_function+"))
        #expect(run.result.stderr.contains(#".globl chain_store"#))
    }

    @Test func intelSyntaxOnRequest() throws {
        let binary = try Fixtures.path("child_store")
        let label = try Fixtures.symbol("child_store", in: binary)
        let run = try TraceRun.run(["-q", "--syntax", "intel"], [binary])
        let split = try #require(run.splits.first { hexValue($0["ip"]) == label })
        let objdump = try Command.run(["/usr/bin/objdump", "-d", "-M", "intel", "--no-show-raw-insn",
                                       String(format: "--start-address=0x%llx", label), String(format: "--stop-address=0x%llx", label + 16), binary]).stdout
        #expect(objdump.contains("mov    QWORD PTR [rip+0x"))
        #expect((split["instruction"] as? String)?.hasPrefix("mov qword ptr [rip + 0x") == true, "\(split)")
    }

    @Test func strippedBinaryKeepsModuleOffsetAndExactIP() throws {
        let binary = try Fixtures.path("call_chain")
        let label = try Fixtures.symbol("chain_store", in: binary)
        let target = try Fixtures.symbol("target", in: binary)
        let stripped = Fixtures.directory + "/call_chain.stripped"
        #expect(try Command.run(["/usr/bin/strip", "-o", stripped, binary]).status == 0)
        let run = try TraceRun.run(["-q"], [stripped])
        #expect(run.result.status == 0)
        let split = try #require(run.splits(onPage: pageOf(target)).first, "\(run.result.stderr)")
        #expect(hexValue(split["ip"]) == label)
        let top = try #require((split["backtrace"] as? [[String: Any]])?.first)
        #expect(top["module"] as? String == stripped)
        #expect(hexValue(top["module_offset"]) == label - 0x400000)
        #expect(top["source"] is NSNull)
        #expect(run.result.stderr.contains(stripped))
    }

    /// libc's functions named as gdb names them (with libc6-dbg): the same function start and
    /// offset for every libc frame #0 in a fork run (gdb may pick another alias of the address).
    @Test func libcFramesAgreeWithGdb() throws {
        let binary = try Fixtures.path("fork_demo")
        let run = try TraceRun.run(["-q"], [binary])
        let libcFrames = run.splits.compactMap { ($0["backtrace"] as? [[String: Any]])?.first }
            .filter { ($0["module"] as? String)?.hasSuffix("/libc.so.6") == true }
        #expect(!libcFrames.isEmpty, "\(run.result.stderr)")
        for frame in libcFrames {
            let module = frame["module"] as! String
            let offset = try #require(hexValue(frame["module_offset"]))
            let name = try #require(frame["symbol"] as? String)
            let within = try #require(frame["offset"] as? Int)
            let gdb = try Command.run(["/usr/bin/gdb", "-nx", "-batch", "-ex", String(format: "info symbol 0x%llx", offset),
                                       "-ex", "info address \(name)", module]).stdout
            let lines = gdb.split(separator: "\n").map(String.init)
            // "fork + 526 in section .text of …" and "Symbol "__fork" is at 0xd3e80 in a file …"
            // (or, with debug information, "… is a function at address 0xd4890.")
            let symbolLine = try #require(lines.first { $0.contains(" in section .text") })
            let gdbOffset = symbolLine.components(separatedBy: " + ").count > 1
                ? Int(symbolLine.components(separatedBy: " + ")[1].split(separator: " ")[0]) : 0
            #expect(gdbOffset == within, "\(name): gdb says \(symbolLine)")
            let addressLine = try #require(lines.first { $0.hasPrefix("Symbol \"\(name)\" is") }, "gdb: \(gdb)")
            let start = try #require(addressLine.split(separator: " ").first { $0.hasPrefix("0x") }
                .flatMap { UInt64(String($0.dropFirst(2).prefix { $0.isHexDigit }), radix: 16) })
            #expect(start + UInt64(within) == offset, "\(name) at \(addressLine)")
        }
    }
    /// A program with no debug file anywhere (bash): libdw's standard search ends by loading
    /// the debuginfod client (libcurl, GnuTLS, Kerberos) into cowtrace, for a server nobody
    /// named. The dynamic linker's own account (LD_DEBUG=files) says what was loaded; libc's
    /// frame #0 still gets its source line from libc6-dbg's file by build-id, as addr2line says.
    @Test func noDebuginfodClientWithoutServers() throws {
        let json = Fixtures.directory + "/events-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        var environment = ProcessInfo.processInfo.environment
        environment["LD_DEBUG"] = "files"
        environment["DEBUGINFOD_URLS"] = nil
        let result = try Command.run([Paths.cowtrace, "-q", "--json", json, "-o", "/dev/null", "/bin/bash", "-c", "/bin/true; /bin/true"],
                                     environment: environment)
        #expect(result.status == 0)
        #expect(result.stderr.contains("file=libdw.so.1"), "LD_DEBUG had no effect: \(result.stderr.prefix(500))")
        #expect(!result.stderr.contains("libdebuginfod"))
        let events = TraceRun.parseEvents((try? String(contentsOfFile: json, encoding: .utf8)) ?? "")
        let libcFrames = events.filter { $0["event"] as? String == "split" }.compactMap { ($0["backtrace"] as? [[String: Any]])?.first }
            .filter { ($0["module"] as? String)?.hasSuffix("/libc.so.6") == true }
        let frame = try #require(libcFrames.first, "no libc frame #0 among the splits")
        let module = try #require(frame["module"] as? String)
        let offset = try #require(hexValue(frame["module_offset"]))
        // addr2line joins libc's relative directory twice ("./posix/./posix/fork.c:127"): the
        // file's name and the line are what must agree.
        let line = try Fixtures.sourceLine(of: offset, in: module)
        let source = try #require(frame["source"] as? String, "no source line: \(frame)")
        #expect(!line.hasPrefix("??") && (source as NSString).lastPathComponent == (line as NSString).lastPathComponent,
                "\(frame) against addr2line \(line)")
    }
}
