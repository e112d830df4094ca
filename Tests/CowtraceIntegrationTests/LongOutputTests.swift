import Foundation
import Testing

/// The text log of a long run is written to its file in line, and nothing the sink holds is
/// lost: a sleeping program's lines reach the file within the periodic flush, and every
/// line and the summary are there however cowtrace ends (interrupted, its guardian killed).
@Suite(.serialized) struct LongOutputTests {
    @Test(arguments: ["SIGINT", "guardian SIGKILL"])
    func everyLineReachesTheLog(ending: String) throws {
        let binary = try Fixtures.path("pages_then_sleep")
        let store = try Fixtures.symbol("sleep_pages_store", in: binary)
        let log = NSTemporaryDirectory() + "cowtrace-long-output-\(getpid()).log"
        defer { unlink(log) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.cowtrace)
        process.arguments = ["-q", "-o", log, binary]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // The child says "written PID" once its 3000 stores are done, then sleeps.
        var said = ""
        while !said.contains("\n") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        let child = Int32(said.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
        defer { if let child { kill(child, SIGKILL) } }
        #expect(child != nil, "\(said)")

        let marker = " by 0x" + String(store, radix: 16) + " "
        func stores(_ text: String) -> Int { text.split(separator: "\n").filter { $0.contains("cow: split") && $0.contains(marker) }.count }
        func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        // While the program sleeps the periodic flush brings every line, the last batch too.
        var text = logText()
        for _ in 0..<100 {
            if stores(text) >= 3000 { break }
            usleep(50_000)
            text = logText()
        }
        #expect(stores(text) == 3000)

        // The tracing runs in the guardian's child; it writes a file in line, with no second
        // thread (one would slow every system call and allocation of the tracer).
        let guardian = process.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(guardian)/task/\(guardian)/children", encoding: .utf8)) ?? ""
        let tracer = try #require(children.split(separator: " ").first.flatMap { Int32($0) })
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(tracer)/task").count) ?? 0
        #expect(threads == 1)

        kill(guardian, ending == "SIGINT" ? SIGINT : SIGKILL)
        // Killed, the guardian leaves the tracer to end on its own (it gets SIGHUP).
        func ended(_ pid: Int32) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return true }
            return stat[stat.index(close, offsetBy: 2)] == "Z"
        }
        for _ in 0..<400 {
            if ended(tracer) && ended(guardian) { break }
            usleep(50_000)
        }
        #expect(ended(tracer) && ended(guardian))
        // The let-go child holds Foundation's end-of-process socket: it goes first.
        if let child { kill(child, SIGKILL) }
        process.waitUntilExit()

        text = logText()
        #expect(stores(text) == 3000)
        #expect(text.contains("cowtrace: interrupted by \(ending == "SIGINT" ? "SIGINT" : "SIGHUP")"), "\(text.suffix(2000))")
        #expect(text.contains("cow summary ("), "\(text.suffix(2000))")
        #expect(text.hasSuffix("\n"))
    }
}
