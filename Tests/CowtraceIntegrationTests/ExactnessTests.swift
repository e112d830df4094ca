import Foundation
import Testing

/// Exact attribution on what real programs do: stores made while signals are blocked,
/// masked and irregular stores, whose bytes the CPU itself reports (not capstone).
@Suite(.serialized) struct ExactnessTests {
    /// The engines that stop at user stores and read the registers there.
    static let engines = ["step", "fault"]
    /// Every engine. The record engine's samples carry no opmask or vector registers, so it
    /// says `unknown` for masked stores instead of guessing their lanes.
    static let allEngines = ["step", "fault", "record"]

    static let cpuFlags: Set<String> = {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return Set(line.split(separator: " ").map(String.init))
    }()

    /// A child blocks every signal, stores into 4 shared pages at one label, unblocks and
    /// stores into 4 more at another: all 8 copies are the child's, at the right label, and
    /// its signal mask comes through unchanged. A handler that runs with every signal
    /// blocked (its sa_mask) stores into 2 more: the child's too, at the handler's label.
    @Test(arguments: allEngines)
    func storesWithSignalsBlockedAreTheChilds(_ engine: String) throws {
        let binary = try Fixtures.path("blocked_stores")
        let blocked = try Fixtures.symbol("blocked_store", in: binary)
        let unblocked = try Fixtures.symbol("unblocked_store", in: binary)
        let pages = try Fixtures.symbol("pages", in: binary)
        let run = try TraceRun.run(["--engine", engine, "-q"], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        #expect(run.result.stdout.contains("child mask kept"), "tracing changed the child's signal mask: \(run.result.stdout)")
        let child = try #require(run.clones.first?["child"] as? Int)
        for i in 0..<8 {
            let page = pages + UInt64(i) * 4096
            let splits = run.splits(onPage: page)
            #expect(splits.count == 1, "page \(i): \(splits)")
            guard let split = splits.first else { continue }
            #expect(split["writer"] as? Int == child, "page \(i)")
            #expect(split["cause"] as? String == "instruction", "page \(i): \(split)")
            #expect(hexValue(split["ip"]) == (i < 4 ? blocked : unblocked), "page \(i): \(split)")
            #expect(hexValue(split["address"]) == page)
            #expect(split["size"] as? Int == 8)
        }
        let handlerStore = try Fixtures.symbol("handler_store", in: binary)
        let handlerPages = try Fixtures.symbol("handler_pages", in: binary)
        for i in 0..<2 {
            let splits = run.splits(onPage: handlerPages + UInt64(i) * 4096)
            #expect(splits.count == 1, "handler page \(i): \(splits)")
            guard let split = splits.first else { continue }
            #expect(split["writer"] as? Int == child)
            #expect(split["cause"] as? String == "instruction", "handler page \(i): \(split)")
            #expect(hexValue(split["ip"]) == handlerStore)
        }
    }

    /// vmovdqu8 under {k1} = 0x3ff writes 10 bytes; vpmaskmovd with 3 of 8 lanes, 12. The
    /// record engine, without the mask registers, says unknown (never the kernel).
    @Test(arguments: allEngines)
    func maskedStoresReportTheBytesWritten(_ engine: String) throws {
        let binary = try Fixtures.path("masked_stores")
        let run = try TraceRun.run(["--engine", engine, "-q"], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let child = try #require(run.clones.first?["child"] as? Int)
        let forms: [(label: String, page: String, flag: String, offset: UInt64, size: Int)] = [
            ("masked_byte_store", "byte_page", "avx512bw", 100, 10),
            ("masked_dword_store", "dword_page", "avx2", 200, 12),
        ]
        for form in forms {
            guard Self.cpuFlags.contains(form.flag) else {
                #expect(run.result.stdout.contains("skip"))
                continue
            }
            let label = try Fixtures.symbol(form.label, in: binary)
            let page = try Fixtures.symbol(form.page, in: binary)
            let splits = run.splits(onPage: page)
            #expect(splits.count == 1, "\(form.label): \(splits)")
            guard let split = splits.first else { continue }
            #expect(split["writer"] as? Int == child)
            if engine == "record" {
                #expect(split["cause"] as? String == "unknown", "\(form.label): \(split)")
                #expect((split["note"] as? String)?.contains("mask registers") == true, "\(split)")
                continue
            }
            #expect(split["cause"] as? String == "instruction", "\(form.label): \(split)")
            #expect(hexValue(split["ip"]) == label)
            #expect(hexValue(split["address"]) == page + form.offset)
            #expect(split["size"] as? Int == form.size, "\(form.label): \(split)")
        }
    }

    /// Each instruction form runs in a real child on a shared page between guard pages; the
    /// fixture reports the bytes that changed (the CPU is the oracle) and cowtrace's write
    /// set must be exactly those (or contain them, where the instruction rewrites bytes with
    /// the value they had; or be the first iteration of a rep instruction).
    @Test(arguments: engines)
    func writeSetsMatchWhatTheCPUWrote(_ engine: String) throws {
        let binary = try Fixtures.path("write_forms")
        let run = try TraceRun.run(["--engine", engine, "-q"], [binary], seconds: 300)
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let lines = run.result.stdout.split(separator: "\n").filter { $0.hasPrefix("form ") }
        #expect(lines.count >= 30, "\(run.result.stdout)")
        for line in lines {
            let words = line.split(separator: " ")
            let name = String(words[1])
            var fields: [String: String] = [:]
            for word in words.dropFirst(2) {
                let kv = word.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
            }
            let page = try #require(hexValue(fields["page"]))
            let child = try #require(fields["child"].flatMap { Int($0) })
            let changed = Self.ranges(fields["changed"] ?? "failed")
            #expect(fields["changed"] != "failed", "\(name): the fixture's child failed")
            let splits = run.splits(onPage: page).filter { $0["writer"] as? Int == child }
            guard !changed.isEmpty else {
                #expect(splits.isEmpty, "\(name): nothing changed, yet \(splits)")
                continue
            }
            #expect(splits.count == 1, "\(name): \(splits)")
            guard let split = splits.first else { continue }
            #expect(split["cause"] as? String == "instruction", "\(name): \(split)")
            #expect(hexValue(split["ip"]) == (try Fixtures.symbol("form_" + name, in: binary)), "\(name): \(split)")
            let reported = (split["ranges"] as? [[String: Any]] ?? []).compactMap { r -> (UInt64, Int)? in
                guard let a = hexValue(r["address"]), let n = r["size"] as? Int else { return nil }
                return (a, n)
            }
            let reportedBytes = Set(reported.flatMap { a, n in (0..<UInt64(n)).map { a + $0 } })
            let changedBytes = Set(changed.flatMap { a, n in (0..<UInt64(n)).map { a + $0 } })
            #expect(split["size"] as? Int == reported.reduce(0) { $0 + $1.1 }, "\(name): \(split)")
            switch fields["expect"] {
            case "exact":
                #expect(reportedBytes == changedBytes, "\(name): reported \(Self.text(reported)), the CPU wrote \(Self.text(changed))")
            case "cover":
                #expect(changedBytes.isSubset(of: reportedBytes), "\(name): reported \(Self.text(reported)), the CPU wrote \(Self.text(changed))")
            default:  // first: one iteration of a rep instruction, at the end it starts from
                #expect(reported.count == 1 && reportedBytes.isSubset(of: changedBytes), "\(name): \(Self.text(reported)) vs \(Self.text(changed))")
                if let r = reported.first, let first = changed.first, let last = changed.last {
                    #expect(r.0 == first.0 || r.0 + UInt64(r.1) == last.0 + UInt64(last.1), "\(name): \(Self.text(reported))")
                }
            }
        }
    }

    /// Every split line is prefixed with the process whose page changed (the JSON writer),
    /// the child's copies made before its first instruction (its TID store, rseq) included.
    @Test(arguments: allEngines)
    func splitLinesNameTheWriter(_ engine: String) throws {
        let binary = try Fixtures.path("fork_demo")
        let run = try TraceRun.run(["--engine", engine, "-q"], [binary])
        #expect(run.result.status == 0, "\(run.result.stderr.suffix(2000))")
        let child = try #require(run.clones.first?["child"] as? Int)
        let lines = run.result.stderr.split(separator: "\n").filter { $0.contains("cow: split 0x") }
        #expect(lines.count == run.splits.count)
        #expect(run.splits.contains { $0["writer"] as? Int == child && $0["cause"] as? String == "clone" })
        for (line, split) in zip(lines, run.splits) {
            let writer = try #require(split["writer"] as? Int)
            #expect(line.hasPrefix("[pid \(String(repeating: " ", count: max(0, 5 - String(writer).count)))\(writer)] "), "\(line)")
            #expect(line.contains(split["page"] as? String ?? "?"), "\(line)")
        }
    }

    /// "0xA+N,0xB+M" -> [(A, N), (B, M)]; "none" -> [].
    static func ranges(_ text: String) -> [(UInt64, Int)] {
        text.split(separator: ",").compactMap { part in
            let pieces = part.split(separator: "+")
            guard pieces.count == 2, let a = hexValue(String(pieces[0])), let n = Int(pieces[1]) else { return nil }
            return (a, n)
        }
    }

    static func text(_ ranges: [(UInt64, Int)]) -> String {
        ranges.map { String(format: "0x%llx+%d", $0.0, $0.1) }.joined(separator: ",")
    }
}
