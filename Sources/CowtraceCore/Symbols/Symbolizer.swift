import CCowtrace
import Glibc

/// Backtraces (libunwind-ptrace) named with libdw: function+offset, module, module-relative
/// address, file:line, and the source line's text for frame #0 when the file is readable.
/// Caches per address-space layout, shared by the processes that have it; `invalidate`
/// after exec and mapping changes, `processGone` at exit.
public final class Symbolizer {
    public static let maxFrames = 32

    /// What follows from an address-space layout alone (the code mapped where): the libdw
    /// session, module bounds, constant memory and the frames already named. Processes with
    /// the same layout (a child right after fork, or repeated runs of one program at fixed
    /// addresses) share one; it ends with the last process using it.
    final class LayoutSymbols {
        let key: String
        let debugInfo: DebugInfo?
        /// Module bounds (start, end pairs), from the executable mappings.
        let modules: [UInt64]
        /// Memory that cannot change while the mappings stay as they are: (start, end) pairs.
        let constantCode: [UInt64]
        /// Named frames by address (bit 63 set for a return address): a hot loop's frames,
        /// and every forked child's, are looked up once.
        var named: [UInt64: BacktraceFrame] = [:]
        /// Whole stacks already named, by their addresses (unwound or sampled): a loop
        /// copying page after page gets the same array back, which the renderers recognise
        /// by identity. Bounded: past the limit stacks are named frame by frame.
        var stacks: [[UInt64]: [BacktraceFrame]] = [:]
        static let stackLimit = 1 << 16
        var lastStack: (ips: [UInt64], frames: [BacktraceFrame])?
        /// libunwind's address space, with a cached ELF image per module.
        let unwinder: OpaquePointer?

        init(key: String, pid: pid_t, mappings: [Mapping], files: DebugFiles) {
            self.key = key
            debugInfo = DebugInfo(pid: pid, files: files)
            modules = Symbolizer.moduleBounds(mappings)
            constantCode = Symbolizer.constantCode(mappings)
            unwinder = cow_unwinder_create()
        }

        deinit { if let unwinder { cow_unwinder_destroy(unwinder) } }
    }

    private struct WeakLayout {
        weak var value: LayoutSymbols?
    }

    /// Per traced process: its layout's symbols. They end when the process exits or execs
    /// (and the layout's with the last process using it).
    private var layouts: [pid_t: LayoutSymbols] = [:]
    /// Layouts by key, held weakly: a new process with a known layout finds its session.
    private var sessions: [String: WeakLayout] = [:]
    /// Debug info per file, shared by the layouts (each exec'd program is a new one).
    private let debugFiles = DebugFiles()
    private var sources: [String: [String]?] = [:]
    private var frames = [cow_frame](repeating: cow_frame(), count: Symbolizer.maxFrames)
    /// Source lines already read, by "file:line".
    private var lineTexts: [String: String?] = [:]
    private var lastLineText: (location: String, text: String?)?

    public init() {}

    /// How many processes hold symbol state, and how many libdw sessions are alive (a debug
    /// figure: both must follow the live processes, not the processes seen).
    public var liveState: (processes: Int, sessions: Int) {
        (layouts.count, sessions.values.filter { $0.value != nil }.count)
    }

    /// A thread exited: its cached unwind handles go.
    public func forget(pid: pid_t, tid: pid_t) {
        if let u = layouts[pid]?.unwinder { cow_unwinder_forget_thread(u, tid) }
    }

    /// The process's mappings changed (or it exec'd): what was derived from them goes.
    public func invalidate(_ pid: pid_t) {
        if let layout = layouts.removeValue(forKey: pid), let u = layout.unwinder {
            // Its descriptor may be this process's; the module handles serve the layout.
            cow_unwinder_forget_thread(u, pid)
        }
        pruneSessions()
    }

    /// Reads ahead the debug info of the files `pid` maps as code, while it runs and the
    /// tracer has nothing else to do (a stop coming meanwhile waits for the reading).
    public func warm(pid: pid_t, mappings: [Mapping]) {
        for m in mappings where m.executable && m.path.hasPrefix("/") && m.inode != 0 {
            debugFiles.warm(path: "/proc/\(pid)/root" + m.path, identity: "\(m.inode) \(m.path)")
        }
    }

    /// The process is gone (exit): nothing of it stays, so a reused pid starts afresh.
    public func processGone(_ pid: pid_t) { invalidate(pid) }

    /// A child right after fork maps what its parent maps: it shares the parent's layout
    /// symbols (if any) until its own mappings change.
    public func inherit(child: pid_t, from parent: pid_t) {
        if let layout = layouts[parent] { layouts[child] = layout }
    }

    private func pruneSessions() {
        if sessions.count > 16 && sessions.count > 2 * layouts.count { sessions = sessions.filter { $0.value.value != nil } }
    }

    private func layout(_ pid: pid_t, _ mappings: [Mapping]) -> LayoutSymbols {
        if let known = layouts[pid] { return known }
        let relevant = mappings.filter { $0.executable || (!$0.writable && ($0.path.hasPrefix("/") || $0.path == "[vdso]")) }
        let key = relevant.map { "\($0.start)-\($0.end) \($0.executable) \($0.path)" }.joined(separator: "\n")
        let made = sessions[key]?.value ?? LayoutSymbols(key: key, pid: pid, mappings: mappings, files: debugFiles)
        sessions[key] = WeakLayout(value: made)
        layouts[pid] = made
        return made
    }

    /// The call stack of thread `tid` of process `pid` with registers `regs` (frame #0 is
    /// regs.rip: the instruction itself, even if the tracee has since executed it).
    public func backtrace(pid: pid_t, tid: pid_t, regs: Registers, mappings: [Mapping]) -> [BacktraceFrame] {
        let layout = layout(pid, mappings)
        var count: Int32 = 0
        if let u = layout.unwinder {
            var r = regs
            count = frames.withUnsafeMutableBufferPointer { f in
                layout.modules.withUnsafeBufferPointer { m in
                    layout.constantCode.withUnsafeBufferPointer { c in
                        cow_unwind(u, tid, &r, m.baseAddress, Int32(m.count / 2), c.baseAddress, Int32(c.count / 2), f.baseAddress, Int32(f.count))
                    }
                }
            }
        }
        if count <= 0 {
            // libunwind could not start: at least the instruction itself.
            return [frame(layout, ip: UInt64(regs.rip), returnAddress: false, fallbackName: nil, fallbackOffset: nil)]
        }
        var ips: [UInt64] = []
        ips.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            if frames[i].ip == 0 { break }
            ips.append(frames[i].ip)
        }
        // A loop copying page after page unwinds the same stack each time: the same array
        // back (frames are named per address once anyway), which every consumer of the
        // split (summary, text and JSON logs) recognises by identity.
        if let last = layout.lastStack, last.ips == ips { return last.frames }
        if let known = layout.stacks[ips] {
            layout.lastStack = (ips, known)
            return known
        }
        var result: [BacktraceFrame] = []
        for i in ips.indices {
            let f = frames[i]
            let name: String? = f.has_name != 0 ? withUnsafeBytes(of: f.name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) } : nil
            result.append(frame(layout, ip: f.ip, returnAddress: i > 0, fallbackName: name, fallbackOffset: f.has_name != 0 ? f.offset : nil))
        }
        if layout.stacks.count < LayoutSymbols.stackLimit { layout.stacks[ips] = result }
        layout.lastStack = (ips, result)
        return result
    }

    /// Frames already unwound elsewhere (the record engine unwinds perf samples): frame #0
    /// is the instruction, the others return addresses, named as `backtrace` names them.
    public func frames(pid: pid_t, ips: [UInt64], mappings: [Mapping]) -> [BacktraceFrame] {
        let layout = layout(pid, mappings)
        if let last = layout.lastStack, last.ips == ips { return last.frames }
        if let known = layout.stacks[ips] {
            layout.lastStack = (ips, known)
            return known
        }
        let named = ips.enumerated().map { i, ip in frame(layout, ip: ip, returnAddress: i > 0, fallbackName: nil, fallbackOffset: nil) }
        if layout.stacks.count < LayoutSymbols.stackLimit { layout.stacks[ips] = named }
        layout.lastStack = (ips, named)
        return named
    }

    private func frame(_ layout: LayoutSymbols, ip: UInt64, returnAddress: Bool, fallbackName: String?, fallbackOffset: UInt64?) -> BacktraceFrame {
        // Bit 63 is never set in a user address: it tells return addresses apart in the key.
        let key = returnAddress ? ip | (1 << 63) : ip
        if let hit = layout.named[key] { return hit }
        let made = lookUp(layout.debugInfo, ip: ip, returnAddress: returnAddress, fallbackName: fallbackName, fallbackOffset: fallbackOffset)
        layout.named[key] = made
        return made
    }

    private func lookUp(_ debugInfo: DebugInfo?, ip: UInt64, returnAddress: Bool, fallbackName: String?, fallbackOffset: UInt64?) -> BacktraceFrame {
        let location = debugInfo?.locate(ip, lookup: returnAddress ? ip &- 1 : ip)
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
        if let last = lastLineText, last.location == location { return last.text }
        if let known = lineTexts[location] {
            lastLineText = (location, known)
            return known
        }
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
