import CCowtrace
import Glibc

/// Backtraces (libunwind-ptrace) named with libdw: function+offset, module, module-relative
/// address, file:line, and the source line's text for frame #0 when the file is readable.
/// Caches per process; `invalidate` after exec and mapping changes.
public final class Symbolizer {
    public static let maxFrames = 32

    private var unwinders: [pid_t: OpaquePointer] = [:]
    private var debugInfo: [pid_t: DebugInfo?] = [:]
    private var sources: [String: [String]?] = [:]
    private var frames = [cow_frame](repeating: cow_frame(), count: Symbolizer.maxFrames)

    public init() {}

    deinit { for u in unwinders.values { cow_unwinder_destroy(u) } }

    public func invalidate(_ pid: pid_t) {
        if let u = unwinders.removeValue(forKey: pid) { cow_unwinder_destroy(u) }
        debugInfo[pid] = nil
    }

    /// The call stack of thread `tid` of process `pid` with registers `regs` (frame #0 is
    /// regs.rip: the instruction itself, even if the tracee has since executed it).
    public func backtrace(pid: pid_t, tid: pid_t, regs: Registers) -> [BacktraceFrame] {
        if unwinders[pid] == nil, let u = cow_unwinder_create() { unwinders[pid] = u }
        var count: Int32 = 0
        if let u = unwinders[pid] {
            var r = regs
            count = frames.withUnsafeMutableBufferPointer { cow_unwind(u, tid, &r, $0.baseAddress, Int32($0.count)) }
        }
        if count <= 0 {
            // libunwind could not start: at least the instruction itself.
            return [frame(pid: pid, ip: UInt64(regs.rip), returnAddress: false, fallbackName: nil, fallbackOffset: nil)]
        }
        var result: [BacktraceFrame] = []
        for i in 0..<Int(count) {
            let f = frames[i]
            if f.ip == 0 { break }
            let name: String? = f.has_name != 0 ? withUnsafeBytes(of: f.name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) } : nil
            result.append(frame(pid: pid, ip: f.ip, returnAddress: i > 0, fallbackName: name, fallbackOffset: f.has_name != 0 ? f.offset : nil))
        }
        return result
    }

    private func frame(pid: pid_t, ip: UInt64, returnAddress: Bool, fallbackName: String?, fallbackOffset: UInt64?) -> BacktraceFrame {
        if debugInfo[pid] == nil { debugInfo[pid] = .some(DebugInfo(pid: pid)) }
        let location = debugInfo[pid]??.locate(ip, lookup: returnAddress ? ip &- 1 : ip)
        let source = location?.file.flatMap { file in location?.line.map { "\(file):\($0)" } }
        return BacktraceFrame(ip: ip, symbol: location?.symbol ?? fallbackName, offset: location?.symbol != nil ? location?.offset : fallbackOffset,
                              module: location?.module, moduleOffset: location?.moduleOffset, source: source)
    }

    /// The text of `file:line` ("fork_demo.c:12"), trimmed; nil when unreadable.
    public func sourceText(_ location: String) -> String? {
        guard let colon = location.lastIndex(of: ":"), let line = Int(location[location.index(after: colon)...]), line > 0 else { return nil }
        let file = String(location[..<colon])
        if sources[file] == nil {
            let lines = (try? readWholeFile(file)).map { String(decoding: $0, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
            sources[file] = .some(lines)
        }
        guard let lines = sources[file] ?? nil, line <= lines.count else { return nil }
        return lines[line - 1].trimmingLeadingWhitespace()
    }
}

extension String {
    func trimmingLeadingWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" })
    }
}
