import CCowtrace
import Glibc

/// Backtraces (libunwind-ptrace) named with libdw: function+offset, module, module-relative
/// address, file:line, and the source line's text for frame #0 when the file is readable.
/// Caches per process; `invalidate` after exec and mapping changes.
public final class Symbolizer {
    public static let maxFrames = 32

    private var unwinders: [pid_t: OpaquePointer] = [:]
    private var debugInfo: [pid_t: DebugInfo?] = [:]
    /// libdw sessions by address-space layout: a child right after fork has its parent's
    /// layout and shares the parent's session (loading libc's debug info is the costly part).
    private var sessions: [String: DebugInfo] = [:]
    private var sources: [String: [String]?] = [:]
    /// Named frames by process, address and whether it is a return address: a hot loop's
    /// frames are looked up once.
    private var named: [pid_t: [UInt64: BacktraceFrame]] = [:]
    private var frames = [cow_frame](repeating: cow_frame(), count: Symbolizer.maxFrames)
    /// Module bounds (start, end pairs) per process, from its executable mappings.
    private var modules: [pid_t: [UInt64]] = [:]
    /// Memory that cannot change while the mappings stay as they are: (start, end) pairs.
    private var constantCode: [pid_t: [UInt64]] = [:]
    /// Source lines already read, by "file:line".
    private var lineTexts: [String: String?] = [:]

    public init() {}

    deinit { for u in unwinders.values { cow_unwinder_destroy(u) } }

    /// A thread exited: its cached unwind handles go.
    public func forget(pid: pid_t, tid: pid_t) {
        if let u = unwinders[pid] { cow_unwinder_forget_thread(u, tid) }
    }

    public func invalidate(_ pid: pid_t) {
        if let u = unwinders.removeValue(forKey: pid) { cow_unwinder_destroy(u) }
        debugInfo[pid] = nil
        named[pid] = nil
        modules[pid] = nil
        constantCode[pid] = nil
    }

    /// The call stack of thread `tid` of process `pid` with registers `regs` (frame #0 is
    /// regs.rip: the instruction itself, even if the tracee has since executed it).
    public func backtrace(pid: pid_t, tid: pid_t, regs: Registers, mappings: [Mapping]) -> [BacktraceFrame] {
        loadDebugInfo(pid: pid, mappings: mappings)
        if unwinders[pid] == nil, let u = cow_unwinder_create() { unwinders[pid] = u }
        var count: Int32 = 0
        if let u = unwinders[pid] {
            var r = regs
            let modules = self.modules[pid] ?? Self.moduleBounds(mappings)
            self.modules[pid] = modules
            let constant = self.constantCode[pid] ?? Self.constantCode(mappings)
            self.constantCode[pid] = constant
            count = frames.withUnsafeMutableBufferPointer { f in
                modules.withUnsafeBufferPointer { m in
                    constant.withUnsafeBufferPointer { c in
                        cow_unwind(u, tid, &r, m.baseAddress, Int32(m.count / 2), c.baseAddress, Int32(c.count / 2), f.baseAddress, Int32(f.count))
                    }
                }
            }
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

    /// Frames already unwound elsewhere (the record engine unwinds perf samples): frame #0
    /// is the instruction, the others return addresses, named as `backtrace` names them.
    public func frames(pid: pid_t, ips: [UInt64], mappings: [Mapping]) -> [BacktraceFrame] {
        loadDebugInfo(pid: pid, mappings: mappings)
        return ips.enumerated().map { i, ip in frame(pid: pid, ip: ip, returnAddress: i > 0, fallbackName: nil, fallbackOffset: nil) }
    }

    private func loadDebugInfo(pid: pid_t, mappings: [Mapping]) {
        guard debugInfo[pid] == nil else { return }
        let layout = mappings.filter { $0.executable }.map { "\($0.start)-\($0.end) \($0.path)" }.joined(separator: "\n")
        if let shared = sessions[layout] {
            debugInfo[pid] = .some(shared)
        } else if let made = DebugInfo(pid: pid) {
            sessions[layout] = made
            debugInfo[pid] = .some(made)
        } else {
            debugInfo[pid] = .some(nil)
        }
    }

    private func frame(pid: pid_t, ip: UInt64, returnAddress: Bool, fallbackName: String?, fallbackOffset: UInt64?) -> BacktraceFrame {
        // Bit 63 is never set in a user address: it tells return addresses apart in the key.
        let key = returnAddress ? ip | (1 << 63) : ip
        if let hit = named[pid]?[key] { return hit }
        let made = lookUp(pid: pid, ip: ip, returnAddress: returnAddress, fallbackName: fallbackName, fallbackOffset: fallbackOffset)
        named[pid, default: [:]][key] = made
        return made
    }

    private func lookUp(pid: pid_t, ip: UInt64, returnAddress: Bool, fallbackName: String?, fallbackOffset: UInt64?) -> BacktraceFrame {
        if debugInfo[pid] == nil { debugInfo[pid] = .some(DebugInfo(pid: pid)) }
        let location = debugInfo[pid]??.locate(ip, lookup: returnAddress ? ip &- 1 : ip)
        let source = location?.file.flatMap { file in location?.line.map { "\(file):\($0)" } }
        // libunwind's own name only where libdw knows no module at all (its lookup has the
        // same nearest-symbol guess that libdw's size check rules out).
        let useFallback = location?.module == nil
        return BacktraceFrame(ip: ip, symbol: location?.symbol ?? (useFallback ? fallbackName : nil),
                              offset: location?.symbol != nil ? location?.offset : (useFallback ? fallbackOffset : nil),
                              module: location?.module, moduleOffset: location?.moduleOffset, source: source)
    }

    /// The text of `file:line` ("fork_demo.c:12"), trimmed; nil when unreadable.
    /// Executable mappings of one file are one module (one ELF image): (start, end) pairs.
    static func moduleBounds(_ mappings: [Mapping]) -> [UInt64] {
        var modules: [UInt64] = []
        var previousPath: String?
        var previousEnd: UInt64 = 0
        for m in mappings where m.executable {
            if !m.path.isEmpty, modules.count >= 2, m.start == previousEnd, m.path == previousPath {
                modules[modules.count - 1] = m.end
            } else {
                modules += [m.start, m.end]
            }
            previousPath = m.path
            previousEnd = m.end
        }
        return modules
    }

    /// Read-only mappings of files (code, .eh_frame) and the vDSO: what the unwinder reads
    /// there changes only with the mappings.
    static func constantCode(_ mappings: [Mapping]) -> [UInt64] {
        mappings.filter { !$0.writable && ($0.path.hasPrefix("/") || $0.path == "[vdso]") }.flatMap { [$0.start, $0.end] }
    }

    public func sourceText(_ location: String) -> String? {
        if let known = lineTexts[location] { return known }
        let text = readSourceLine(location)
        lineTexts[location] = .some(text)
        return text
    }

    private func readSourceLine(_ location: String) -> String? {
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
