import CCowtrace
import Glibc

/// The engine for long runs: no stop per page fault. Every thread of a process that shares
/// pages writes its write faults into a perf ring buffer (with root the tracepoints
/// exceptions:page_fault_user/kernel, filtered in the kernel to writes on present pages;
/// otherwise software page-fault samples, user mode only), with its registers and a copy of
/// the top of its stack, unwound as soon as a reader thread drains it. At every ptrace stop
/// that remains (clone, syscalls of sharing processes, exec, exit) the samples are replayed
/// in time order against the ledger with the fault engine's rule: a write fault on a page the
/// process shares is a candidate, confirmed as a copy only when pagemap shows the new frame
/// (a fault is not a copy: the last holder's write reuses the frame); the cause is the
/// sampled instruction if its write set covers the page. Pages found changed with no sample
/// to explain them are the kernel's (a kernel-mode fault was seen) or unknown.
public final class RecordEngine: CowEngine {
    public struct Settings: Sendable {
        /// Ring buffer data pages per CPU (a power of two). By default 4096 (16 MiB) as
        /// root, 64 without: an unprivileged user's buffers count against a small mlock limit.
        public var bufferPages: Int?
        /// Bytes of user stack copied with each sample.
        public var stackBytes = 8192
        /// --while-shared: once pages have been shared and no longer are (the child that
        /// shared them is gone: a server's BGSAVE), detach from everything and end.
        public var whileShared = false
        /// false (--no-syscall-stops): sharing processes are not stopped at their syscalls
        /// either (with -q, as root). The kernel's stores are then named from the kernel call
        /// chain of their faults (the syscall's name and arguments, not its result), and the
        /// mapping calls (mmap, munmap, mremap, madvise) are recorded as samples.
        public var syscallStops = true
        /// -p: the program runs already. What its first split would load while it waits
        /// stopped (its modules' debug information, the kernel's symbols) is loaded at attach.
        public var attached = false
        public init() {}
    }

    private let recorder: OpaquePointer
    private let settings: Settings
    private let bufferPages: Int
    /// Processes with a thread whose faults could not be recorded: what they copy is unknown.
    private var unrecorded: Set<pid_t> = []
    /// Tracepoints (root) rather than software page-fault samples.
    public let usesTracepoints: Bool
    /// Sharing processes stop at their syscalls (the kernel's stores named exactly there).
    private let stopsAtSyscalls: Bool
    /// Kernel text symbols, for naming kernel call chains (without syscall stops): the file
    /// is read in the background from the start, so the first kernel store (often at a
    /// server's child's exit, which its parent waits for) does not wait for it.
    private lazy var kernelSymbols = kernelSymbolsPreload?.finish() ?? KernelSymbols()
    private var kernelSymbolsPreload: KernelSymbols.Preload?
    private let instructions: InstructionCache
    /// Threads whose faults are being recorded.
    private var recorded: Set<pid_t> = []
    /// fs_base and gs_base per thread: perf does not sample them, %fs-relative stores need them.
    private var segmentBases: [pid_t: (fs: UInt64, gs: UInt64)] = [:]
    /// Each process's first write fault on a shared page whose copy pagemap has not shown yet
    /// (the sample is taken when the fault starts; the copy may still be under way).
    private var pendingFaults: [pid_t: [UInt64: cow_sample]] = [:]
    /// Pages the kernel wrote in kernel mode (page_fault_kernel), per process, since its last sweep.
    private var kernelWrites: [pid_t: Set<UInt64>] = [:]
    public private(set) var faults = 0
    private var lostNoted: UInt64 = 0
    private var nextLossCheck: UInt64 = 0
    /// Some clone has shared pages (for --while-shared).
    private var sharedOnce = false

    public init(tracker: CowTracker, disassembler: Disassembler, settings: Settings) throws {
        self.settings = settings
        bufferPages = settings.bufferPages ?? (geteuid() == 0 ? 4096 : 64)
        instructions = InstructionCache(disassembler: disassembler, processes: tracker.processes)
        var ids: (UInt64, UInt64, UInt64)?
        if geteuid() == 0 {
            _ = cow_mount_tracefs()
            ids = Self.tracepointIDs()
        }
        var made: OpaquePointer?
        var tracepoints = false
        var failure: Int32 = 0
        for candidate in ids != nil ? [ids, nil] : [nil] {
            let syscalls = settings.syscallStops ? 0 : candidate?.2 ?? 0
            guard let recorder = cow_recorder_create(Int32(bufferPages), Int32(settings.stackBytes), candidate?.0 ?? 0, candidate?.1 ?? 0,
                                                     syscalls) else { continue }
            // Probed on our own thread: the kernel says now whether it allows these events.
            if cow_recorder_add_thread(recorder, cow_gettid()) == 0 {
                cow_recorder_remove_thread(recorder, cow_gettid())
                var count = 0
                free(cow_recorder_take(recorder, &count))
                made = recorder
                tracepoints = candidate != nil
                break
            }
            failure = errno
            cow_recorder_destroy(recorder)
        }
        guard let made else { throw CowtraceError("--engine record: perf_event_open: \(ErrnoNames.message(failure))") }
        let rc = cow_recorder_start(made)
        if rc != 0 {
            cow_recorder_destroy(made)
            throw CowtraceError("--engine record: reader thread: \(ErrnoNames.message(rc))")
        }
        recorder = made
        usesTracepoints = tracepoints
        stopsAtSyscalls = settings.syscallStops || !tracepoints
        if !stopsAtSyscalls { kernelSymbolsPreload = KernelSymbols.Preload() }
        if !settings.syscallStops && !tracepoints {
            tracker.stream.note("--no-syscall-stops needs the page-fault tracepoints (root): syscall stops kept")
        }
        super.init(tracker: tracker, kind: .record)
    }

    deinit { cow_recorder_destroy(recorder) }

    /// The ids of exceptions:page_fault_user, page_fault_kernel and raw_syscalls:sys_enter
    /// from tracefs (root only).
    static func tracepointIDs() -> (UInt64, UInt64, UInt64)? {
        func id(_ name: String) -> UInt64? {
            for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
                if let bytes = try? readWholeFile("\(root)/events/\(name)/id"),
                   let value = UInt64(String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }) {
                    return value
                }
            }
            return nil
        }
        guard let user = id("exceptions/page_fault_user"), let kernel = id("exceptions/page_fault_kernel"),
              let syscalls = id("raw_syscalls/sys_enter") else { return nil }
        return (user, kernel, syscalls)
    }

    public var lostSamples: UInt64 { cow_recorder_lost(recorder) }

    // MARK: Which threads are recorded

    override func sharingStarted(_ pid: pid_t, tracer: Tracer) {
        sharedOnce = true
        for tracee in tracer.tracees.values where tracee.tgid == pid { record(tracee) }
    }

    /// Opens the thread's events (it is stopped: its segment bases and rseq area are read now).
    private func record(_ tracee: Tracee) {
        guard !recorded.contains(tracee.tid) else { return }
        guard let regs = try? Ptrace.registers(tracee.tid) else { return }  // not stopped: at its next resume
        segmentBases[tracee.tid] = (UInt64(regs.fs_base), UInt64(regs.gs_base))
        _ = rseqPage(tracee)
        if cow_recorder_add_thread(recorder, tracee.tid) == 0 {
            recorded.insert(tracee.tid)
        } else {
            recorded.insert(tracee.tid)  // not again
            unrecorded.insert(tracee.tgid)
            tracker.stream.note("perf_event_open on \(tracee.tid): \(ErrnoNames.message(errno)); its user-mode copies are found at syscalls only")
        }
    }

    private func stopRecording(_ tid: pid_t) {
        guard recorded.remove(tid) != nil else { return }
        cow_recorder_remove_thread(recorder, tid)
    }

    public override func resumeMode(for tracee: Tracee, signal: Int32, tracer: Tracer) -> ResumeMode {
        if isHeld(tracee) { return .hold }
        signalDelivered(tracee, signal)
        if tracker.shares(tracee.tgid) {
            record(tracee)  // a thread created since sharing began
            return stopsAtSyscalls ? .syscall : .run
        }
        stopRecording(tracee.tid)  // nothing shared any more: no samples, full speed
        return .run
    }

    // MARK: Stops: replay what was recorded first

    public override func syscallEntered(_ tracee: Tracee, _ call: SyscallArguments, clone: CloneRequest?, tracer: Tracer) {
        replay(tracer)
        confirmPending(of: tracee, tracer: tracer)
        super.syscallEntered(tracee, call, clone: clone, tracer: tracer)
        kernelWrites[tracee.tgid] = nil
    }

    public override func syscallExited(_ tracee: Tracee, _ call: SyscallArguments, _ outcome: SyscallOutcome, clone: CloneRequest?, tracer: Tracer) {
        replay(tracer)
        confirmPending(of: tracee, tracer: tracer)
        super.syscallExited(tracee, call, outcome, clone: clone, tracer: tracer)
        kernelWrites[tracee.tgid] = nil
    }

    public override func created(_ child: Tracee, by parent: Tracee, request: CloneRequest?, tracer: Tracer) {
        replay(tracer)
        super.created(child, by: parent, request: request, tracer: tracer)
    }

    public override func firstStop(_ tracee: Tracee, tracer: Tracer) {
        replay(tracer)
        if settings.attached && tracee.isInitial && tracee.isLeader { warmUp(tracee) }
        super.firstStop(tracee, tracer: tracer)
    }

    /// Attached to a running server: what naming its first split would cost while a stopped
    /// fork waits is paid now, before any fork (measured on Redis: libc's debug information,
    /// decompressed by libdw on first use, some 40 ms of a BGSAVE's 0.3 s; the kernel's
    /// symbols, 7 ms). One lookup per module of the thread's registers loads its sections.
    private func warmUp(_ tracee: Tracee) {
        if !stopsAtSyscalls { _ = kernelSymbols }
        guard let symbolizer = tracker.symbolizer, let regs = try? Ptrace.registers(tracee.tid) else { return }
        _ = symbolizer.frames(pid: tracee.tgid, ips: [UInt64(regs.rip)], mappings: tracker.maps(tracee.tgid))
    }

    public override func execed(_ tracee: Tracee, tracer: Tracer) {
        replay(tracer)
        super.execed(tracee, tracer: tracer)
    }

    /// The thread is about to exit with its memory still mapped: the last look at its pages.
    public override func exiting(_ tracee: Tracee, tracer: Tracer) {
        replay(tracer)
        confirmPending(of: tracee, tracer: tracer)
        if tracker.shares(tracee.tgid) {
            tracker.sweep(tracee.tgid, dropReason: "exit", cause: unexplained(tracee))
            kernelWrites[tracee.tgid] = nil
        }
        super.exiting(tracee, tracer: tracer)
    }

    public override func gone(_ tracee: Tracee, tracer: Tracer) {
        replay(tracer)
        super.gone(tracee, tracer: tracer)
        if !tracer.tracees.values.contains(where: { $0.tgid == tracee.tgid }) {
            unrecorded.remove(tracee.tgid)
            pendingFaults[tracee.tgid] = nil
            kernelWrites[tracee.tgid] = nil
        }
    }

    override func threadGone(_ tracee: Tracee) {
        stopRecording(tracee.tid)
        segmentBases[tracee.tid] = nil
    }

    /// The tracees run: replay what the reader has drained (it interrupts the wait when a batch
    /// is waiting), so the work overlaps the program instead of waiting for its next stop.
    /// Without frame numbers a copy can need the other holders' stops: only at stops then.
    public override func beforeWait() {
        if tracker.framesVisible, let tracer { replay(tracer) }
        super.beforeWait()
        if settings.whileShared && sharedOnce && tracker.ledger.totalShared == 0 && !holdsNewProcesses, let tracer, !tracer.tracees.isEmpty {
            letGo(tracer)
            return
        }
        cow_recorder_waiting(recorder)
    }

    /// Nothing is shared any more: the events go first (nothing of ours stays on the
    /// threads), then the tracees are detached and run on; the loop ends with the summary.
    private func letGo(_ tracer: Tracer) {
        replay(tracer)
        for tid in recorded { cow_recorder_remove_thread(recorder, tid) }
        recorded.removeAll()
        replay(tracer)
        tracker.stream.note("--while-shared: nothing is shared any more; detaching from \(Set(tracer.tracees.values.map(\.tgid)).sorted().map(String.init).joined(separator: ", "))")
        tracer.detachAll()
    }

    override func codeChanged(_ pid: pid_t) {
        instructions.invalidate(pid)
        cow_recorder_maps_changed(recorder, pid)
    }

    override func causeBeforeSyscall(_ tracee: Tracee, _ call: SyscallArguments) -> (UInt64) -> SplitCause {
        unexplained(tracee)
    }

    /// A page found changed at a stop with no user-mode sample behind it.
    private func unexplained(_ tracee: Tracee) -> (UInt64) -> SplitCause {
        let rseq = rseqPage(tracee)
        let kernel = kernelWrites[tracee.tgid] ?? []
        let tracepoints = usesTracepoints
        return { [unowned self] page in
            if page == rseq { return .kernel(.rseq) }
            if kernel.contains(page) { return .kernel(nil) }
            if self.unrecorded.contains(tracee.tgid) {
                return .unknown(note: "a thread of \(tracee.tgid) could not be recorded (perf_event_open failed)")
            }
            let lost = self.lostSamples
            if lost > 0 {
                return .unknown(note: "\(lost) perf sample\(lost == 1 ? "" : "s") lost to full ring buffers (--buffer-pages \(self.bufferPages)); this copy may be one of them")
            }
            // Without root the kernel's own faults are not sampled: as the fault engine does.
            return tracepoints ? .unknown(note: "copied with no page-fault sample to explain it") : .kernel(nil)
        }
    }

    // MARK: Replay

    /// Every sample drained so far, in time order, against the ledger.
    private func replay(_ tracer: Tracer) {
        var count = 0
        guard let taken = cow_recorder_take(recorder, &count) else { return }
        defer { free(taken) }
        let samples = UnsafeBufferPointer(start: taken, count: count)
        // Buffers are drained one after another: merge them by time (each is in order).
        let order = (0..<count).sorted { samples[$0].time != samples[$1].time ? samples[$0].time < samples[$1].time : $0 < $1 }
        // The pages the batch may have copied, read once (one pread per run, not per sample).
        var wanted: [pid_t: Set<UInt64>] = [:]
        if count > 1 {
            for sample in samples where sample.kernel == 0 {
                let pid = pid_t(sample.pid), page = sample.address & ~4095
                if tracker.ledger.record(pid, page) != nil { wanted[pid, default: []].insert(page) }
            }
        }
        tracker.withPrefetched(wanted) {
            for i in order { replayOne(samples[i], tracer: tracer) }
            for (pid, pages) in pendingFaults {
                for page in pages.keys { confirm(pid, page, tracer: tracer) }
            }
        }
        noteLosses()
    }

    private func replayOne(_ sample: cow_sample, tracer: Tracer) {
        faults += 1
        let pid = pid_t(sample.pid), page = sample.address & ~4095
        if sample.kernel == 2 {
            mappingCall(sample)
            return
        }
        if sample.kernel == 1 && stopsAtSyscalls {
            kernelWrites[pid, default: []].insert(page)
            return
        }
        guard tracker.ledger.record(pid, page) != nil else {
            // The last holder's write: a reuse, if its frame stayed.
            if sample.kernel == 0 && tracker.watchesReuse(pid) { tracker.checkReuse(pid, pages: [page], ip: UInt64(sample.regs.rip)) }
            return
        }
        if pendingFaults[pid]?[page] != nil {
            confirm(pid, page, tracer: tracer)  // an earlier fault on the page is the candidate
        } else if !confirm(pid, page, sample, tracer: tracer) {
            // Its copy not visible yet (or not the instruction's store): kept for later looks.
            pendingFaults[pid, default: [:]][page] = sample
        }
    }

    /// The thread stopped: its faults are over; those pagemap does not show as copies were not.
    private func confirmPending(of tracee: Tracee, tracer: Tracer) {
        guard let pages = pendingFaults[tracee.tgid] else { return }
        for (page, sample) in pages where sample.tid == tracee.tid {
            confirm(tracee.tgid, page, tracer: tracer)
            pendingFaults[tracee.tgid]?[page] = nil
        }
        if pendingFaults[tracee.tgid]?.isEmpty == true { pendingFaults[tracee.tgid] = nil }
    }

    /// Reads the page's frame for the pending fault on it; settled, the fault is forgotten.
    private func confirm(_ pid: pid_t, _ page: UInt64, tracer: Tracer) {
        guard let sample = pendingFaults[pid]?[page] else { return }
        if confirm(pid, page, sample, tracer: tracer) { pendingFaults[pid]?[page] = nil }
    }

    /// Reads the page's frame; a new one is the sampled fault's copy. Returns whether the
    /// fault is settled: the page split (or left the ledger), or the sampled instruction does
    /// not store there (a software sample of a read explains nothing later). Most faults
    /// settle at once and are never kept.
    private func confirm(_ pid: pid_t, _ page: UInt64, _ sample: cow_sample, tracer: Tracer) -> Bool {
        if sample.kernel == 1 {
            return confirmKernelStore(pid, page, sample, tracer: tracer)
        }
        var regs = sample.regs
        if let bases = segmentBases[pid_t(sample.tid)] {
            regs.fs_base = bases.fs
            regs.gs_base = bases.gs
        }
        let instruction = instructions.instruction(at: UInt64(regs.rip), in: pid, memory: tracer.memory(of: pid))
        // The faulting instruction had not completed: the registers are its "before" state.
        var once = regs
        if instruction?.repeated == true && once.rcx > 0 { once.rcx -= 1 }
        let writes = instruction?.writeSet(before: regs, after: once) ?? .notComputable("undecodable instruction")
        let rseq = tracer.tracees[pid_t(sample.tid)].flatMap { rseqPage($0) }
        let symbolizer = tracker.symbolizer
        let count = Int(sample.frame_count)
        let ips: [UInt64] = withUnsafeBytes(of: sample.frames) { Array($0.bindMemory(to: UInt64.self).prefix(count)) }
        let frames: (() -> [BacktraceFrame])? = ips.isEmpty || symbolizer == nil ? nil : { [unowned self] in
            symbolizer!.frames(pid: pid, ips: ips, mappings: self.tracker.maps(pid))
        }
        tracker.check(pid, pages: [page], dropReason: "exit", origin: CowTracker.Origin(tid: pid_t(sample.tid), regs: regs, frames: frames),
                      siblingsMayHaveWritten: false) { page in
            let touched = writes.range(on: page) == nil ? instruction?.touchedPages(before: regs) ?? [] : []
            return CowEngine.cause(of: page, instruction: instruction, writes: writes, touched: touched, rseq: rseq)
        }
        // Split (or dropped): settled. A fault whose instruction does not store there (a
        // software sample of a read) explains nothing later.
        return tracker.ledger.record(pid, page) == nil || writes.range(on: page) == nil && instruction?.kind != .notComputable
    }

    // MARK: Without syscall stops

    /// A kernel-mode write fault (no syscall stop to name it): the kernel call chain says
    /// whose store it was, the syscall's name and arguments from the registers at its entry.
    private func confirmKernelStore(_ pid: pid_t, _ page: UInt64, _ sample: cow_sample, tracer: Tracer) -> Bool {
        let rseq = tracer.tracees[pid_t(sample.tid)].flatMap { rseqPage($0) }
        let count = Int(sample.kernel_frame_count)
        let chain: [UInt64] = withUnsafeBytes(of: sample.kernel_frames) { Array($0.bindMemory(to: UInt64.self).prefix(count)) }
        let names = chain.map(kernelSymbol)
        let cause: SplitCause
        if page == rseq || names.contains(where: { $0.contains("rseq") }) {
            cause = .kernel(.rseq)
        } else if names.contains(where: { $0.contains("setup_rt_frame") || $0 == "handle_signal" }) {
            cause = .kernel(.signalFrame)
        } else if let call = Self.syscallName(kernelChain: names) {
            let r = sample.regs
            let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9].map { "0x" + String($0, radix: 16) }.joined(separator: ", ")
            cause = .syscall(SyscallCall(name: call.name, line: "\(call.name)(\(args)) (in \(call.function); no syscall stop: arguments from the registers, result unknown)"))
        } else {
            cause = .kernel(nil)
        }
        let symbolizer = tracker.symbolizer
        let frameCount = Int(sample.frame_count)
        let ips: [UInt64] = withUnsafeBytes(of: sample.frames) { Array($0.bindMemory(to: UInt64.self).prefix(frameCount)) }
        let frames: (() -> [BacktraceFrame])? = ips.isEmpty || symbolizer == nil ? nil : { [unowned self] in
            symbolizer!.frames(pid: pid, ips: ips, mappings: self.tracker.maps(pid))
        }
        tracker.check(pid, pages: [page], dropReason: "exit", origin: CowTracker.Origin(tid: pid_t(sample.tid), regs: sample.regs, frames: frames),
                      siblingsMayHaveWritten: false) { _ in cause }
        return tracker.ledger.record(pid, page) == nil
    }

    /// The entry of a call that takes pages out of the address space: they are dropped (the
    /// samples after it find the new mapping, not a copy).
    private func mappingCall(_ sample: cow_sample) {
        let pid = pid_t(sample.pid)
        let a = sample.args
        let start = a.0 & ~4095
        var length = a.1
        let name: String
        switch sample.address {
        case 9:  // mmap: only over an existing mapping (MAP_FIXED)
            guard a.3 & 0x10 != 0 else { return }
            name = "mmap"
        case 11: name = "munmap"
        case 25: name = "mremap"  // the old range moves or shrinks: its pages leave the ledger
        case 28:  // madvise: the advice that discards pages
            guard [4, 8, 9, 24].contains(a.2) else { return }
            name = "madvise"
        default: return
        }
        length = (length + 4095) & ~4095
        guard length > 0, start &+ length > start else { return }
        tracker.dropPages(pid, in: start..<(start + length), reason: name)
        tracker.mappingsChanged(pid)
        codeChanged(pid)
    }

    /// The syscall a kernel call chain (innermost first) is in: the function do_syscall_64
    /// called (past the x64_sys_call dispatcher), its name without the kernel's prefixes.
    static func syscallName(kernelChain names: [String]) -> (name: String, function: String)? {
        guard var i = names.firstIndex(of: "do_syscall_64"), i > 0 else { return nil }
        i -= 1
        if names[i] == "x64_sys_call" && i > 0 { i -= 1 }
        let function = names[i]
        for prefix in ["__x64_sys_", "__do_sys_", "__se_sys_", "ksys_", "__sys_", "do_sys_"] where function.hasPrefix(prefix) {
            return (String(function.dropFirst(prefix.count)), function)
        }
        return (function, function)
    }

    private func kernelSymbol(_ address: UInt64) -> String { kernelSymbols.name(at: address) }

    private func noteLosses() {
        // Reading the counts costs a read per buffer: at most every 100 ms.
        let now = monotonicNanoseconds()
        guard now >= nextLossCheck else { return }
        nextLossCheck = now + 100_000_000
        let lost = lostSamples
        guard lost > lostNoted else { return }
        lostNoted = lost
        tracker.stream.note("record: \(lost) perf sample\(lost == 1 ? "" : "s") lost so far (ring buffers of \(bufferPages) pages full): the pages they copied are reported unknown; raise --buffer-pages")
    }

    public override func finished(tracer: Tracer) {
        replay(tracer)
        tracker.finish(engine: kind, steps: 0, faults: faults, sweeps: sweepCounts,
                       lost: CowSummary.LostSamples(count: Int(lostSamples), bufferPages: bufferPages))
    }
}

private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
