import CCowtrace
import Glibc

/// The ptrace event loop: one `waitpid(-1, __WALL)` loop over every traced thread, on the
/// thread that attached them (ptrace is per thread), so it is synchronous and `noasync`.
public final class Tracer {
    public struct Configuration {
        /// -q: log clone-family calls (and cow annotations) only. A process that shares
        /// nothing then runs with PTRACE_CONT: its clones are seen at their fork/clone event
        /// stops (no seccomp filter, which would outlive a detach).
        public var quiet = false
        /// Launch the program in a new session (it may be left stopped when cowtrace exits).
        public var newSession = false
        public init() {}
    }

    public let configuration: Configuration
    /// Every event goes there, in order; the text and JSON logs are behind it.
    public let stream: EventStream
    /// Strong: the engine holds no reference back, and a weak load on every stop costs.
    public var observer: (any TraceObserver)?
    /// Called at each periodic tick (`LiveProgress`: flush the logs, redraw the status line).
    public var onTick: (() -> Void)?

    public private(set) var tracees: [pid_t: Tracee] = [:]
    /// What is held open and cached per traced process, closed when it exits or execs.
    public let processes: ProcessTable
    /// The first process: its exit status becomes cowtrace's.
    private var mainPid: pid_t = 0
    private var mainTermination: WaitStatus?
    private var launched = false
    private var spawnErrorFD: Int32 = -1
    private var mainExeced = false

    public init(configuration: Configuration, stream: EventStream, processes: ProcessTable = ProcessTable()) {
        self.configuration = configuration
        self.stream = stream
        self.processes = processes
    }

    // MARK: Starting

    /// Launches `command` under ptrace: the spawn helper (C, between fork and exec) stops
    /// itself; once it is stopped it is seized (PTRACE_SEIZE, so its group stops can be held
    /// with PTRACE_LISTEN, as for attached processes) and continued, and it execs.
    @available(*, noasync, message: "ptrace calls must stay on the thread that attached")
    public func launch(_ command: [String], environment: [String]? = nil) throws {
        let path = try ProgramLocator.locate(command[0])
        let env = environment ?? Self.currentEnvironment()
        var errorFD: Int32 = -1
        let pid = withCStrings(command) { argv in
            withCStrings(env) { envp in cow_spawn_traced(path, argv, envp, configuration.newSession ? 1 : 0, &errorFD) }
        }
        guard pid > 0 else { throw CowtraceError("cannot start \(command[0]): fork: \(ErrnoNames.message(errno))") }
        spawnErrorFD = errorFD
        guard case .signalStop(SIGSTOP)? = waiter.reap(pid, untracedChild: true)?.status else {
            throw CowtraceError("cannot start \(command[0]): \(spawnFailure() ?? "it did not stop")")
        }
        do {
            try Ptrace.seize(pid, PtraceOptions.following.union(.exitKill))
        } catch {
            kill(pid, SIGKILL)
            throw CowtraceError("cannot start \(command[0]): ptrace(PTRACE_SEIZE): \(ErrnoNames.message(error.errno))")
        }
        launched = true
        mainPid = pid
        let tracee = Tracee(tid: pid, tgid: pid, seized: true)
        tracee.isInitial = true
        add(tracee)
        // Its first stop is the re-trap of its SIGSTOP as a seized tracee; the SIGCONT that
        // ends that stop is ours, swallowed when it is reported.
        launchContinuePending = true
        kill(pid, SIGCONT)
    }

    /// The SIGCONT that lets the spawn helper go on to exec is still to be reported.
    private var launchContinuePending = false

    /// Attaches to every thread of a running process with PTRACE_SEIZE, then interrupts them.
    @available(*, noasync, message: "ptrace calls must stay on the thread that attached")
    public func attach(pid: pid_t) throws {
        guard pid > 0, access("/proc/\(pid)", F_OK) == 0 else {
            throw CowtraceError("attach: pid \(pid): No such process")
        }
        guard pid != getpid() && pid != cow_guardian() else { throw CowtraceError("attach: pid \(pid) is cowtrace itself") }
        mainPid = pid
        var seen: Set<pid_t> = []
        // Threads may be created while we attach: list again until nothing new appears.
        while true {
            let tids = Self.threads(of: pid)
            let fresh = tids.filter { !seen.contains($0) }
            if fresh.isEmpty { break }
            for tid in fresh {
                seen.insert(tid)
                do {
                    try Ptrace.seize(tid, .following)
                } catch let error where error.errno == ESRCH && tid != pid {
                    continue  // the thread exited meanwhile
                } catch {
                    if !tracees.isEmpty { detachAll() }
                    throw CowtraceError("attach: ptrace(PTRACE_SEIZE, \(tid)): \(ErrnoNames.message(error.errno))")
                }
                let tracee = Tracee(tid: tid, tgid: pid, seized: true)
                tracee.isInitial = true
                add(tracee)
                _ = try? Ptrace.interrupt(tid)
            }
        }
        if tracees.isEmpty { throw CowtraceError("attach: pid \(pid): No such process") }
    }

    // MARK: The loop

    /// Runs until every tracee is gone; returns cowtrace's exit status.
    @available(*, noasync, message: "blocks in waitpid")
    public func run() throws -> Int32 {
        cow_install_interrupt_handlers()
        var interruptedBy: Int32 = 0
        var interruptsSeen: Int32 = 0
        while !tracees.isEmpty {
            if let queued = waiter.dequeue() {
                handle(queued.pid, queued.status)
                continue
            }
            observer?.beforeWait()
            if cow_tick_take() != 0 {
                onTick?()
                observer?.ticked(tracer: self)
            }
            // Right before blocking, so that the work above cannot delay a Ctrl-C.
            if cow_interrupt_count() != interruptsSeen {
                interruptsSeen = cow_interrupt_count()
                let signal = cow_interrupt_signal()
                handleInterrupt(signal, first: interruptedBy == 0)
                interruptedBy = signal
                continue
            }
            do {
                let reaped = try waiter.wait(interruptible: true)
                handle(reaped.pid, reaped.status)
            } catch Waiter.Nothing.interrupted {
                continue
            } catch Waiter.Nothing.noChildren {
                break
            }
        }
        observer?.finished(tracer: self)
        stream.flush()
        if interruptedBy != 0 && (!launched || mainTermination == nil) { return 128 + interruptedBy }
        if launched && !mainExeced, let failure = spawnFailure() {
            throw CowtraceError("exec \(failure)")
        }
        switch mainTermination {
        case .exited(let code): return code
        case .killed(let signal, _): return 128 + signal
        default: return 0
        }
    }

    private func handle(_ pid: pid_t, _ status: WaitStatus) {
        switch status {
        case .exited, .killed:
            exited(pid, status)
            return
        case .continued, .unknown:
            return
        default:
            break
        }
        let tracee = tracees[pid] ?? newborn(pid)
        tracee.stopped = true
        tracee.waitsForVforkChild = false
        if tracee.awaitingFirstStop && tracee.isInitial && !Self.isInterruptStop(status) {
            // Attached, its PTRACE_INTERRUPT stop asked for, but it made another stop first (a
            // fork it was inside, say): the kernel clears a pending STOP trap at every ptrace
            // stop, so this stop is its first and no PTRACE_EVENT_STOP may follow.
            tracee.awaitingFirstStop = false
            observer?.firstStop(tracee, tracer: self)
        }
        handling.append(pid)
        defer { handling.removeLast() }
        switch status {
        case .syscallStop:
            syscallStop(tracee)
        case .eventStop(let event, let signal):
            eventStop(tracee, event, signal: signal)
        case .signalStop(let signal):
            signalStop(tracee, signal)
        default:
            break
        }
    }

    private static func isInterruptStop(_ status: WaitStatus) -> Bool {
        if case .eventStop(.stop, _) = status { return true }
        return false
    }

    /// A stop from a pid we have not heard of: a new child whose first stop beat its
    /// parent's PTRACE_EVENT_FORK/CLONE.
    private func newborn(_ pid: pid_t) -> Tracee {
        let seized = tracees.values.first?.seized ?? false
        let tracee = Tracee(tid: pid, tgid: threadGroup(of: pid) ?? pid, seized: seized)
        add(tracee)
        return tracee
    }

    private func add(_ tracee: Tracee) {
        tracees[tracee.tid] = tracee
        processes.open(tracee.tgid)
        stream.traceeCount = tracees.count
    }

    // MARK: Syscall stops

    private func syscallStop(_ tracee: Tracee) {
        guard let info = try? Ptrace.syscallInfo(tracee.tid) else {
            resume(tracee)
            return
        }
        switch info.op {
        case 1:
            tracee.atSyscallEntry = true
            syscallEntry(tracee, info)
            tracee.atSyscallEntry = false
        case 2: syscallExit(tracee, info)
        default: break
        }
        resume(tracee)
    }

    private func syscallEntry(_ tracee: Tracee, _ info: cow_syscall_info) {
        let name = SyscallTable.name(info.nr)
        let args = SyscallArguments(number: info.nr, name: name, values: withUnsafeBytes(of: info.args) { Array($0.bindMemory(to: UInt64.self)) })
        let memory = self.memory(of: tracee.tgid)
        let clone = CloneRequest.decode(name: name, arguments: args.values, memory: memory)
        let logged = !configuration.quiet || clone != nil
        let decoder = SyscallDecoders.decoder(for: info.nr)
        var entryText = ""
        if logged {
            entryText = decoder.entry(args, memory)
            stream.emit(.syscallEntry(tid: tracee.tid, name: name, arguments: entryText))
        }
        tracee.inFlight = InFlightSyscall(arguments: args, decoder: decoder, logged: logged, entryText: entryText,
                                          clone: clone, instructionPointer: info.instruction_pointer)
        observer?.syscallEntered(tracee, args, clone: clone, tracer: self)
    }

    /// A clone's entry, from its event stop: the kernel has made the child already.
    private func lateSyscallEntry(_ tracee: Tracee) {
        guard let regs = try? Ptrace.registers(tracee.tid) else { return }
        var info = cow_syscall_info()
        info.op = 1
        info.nr = UInt64(regs.orig_rax)
        info.args = (UInt64(regs.rdi), UInt64(regs.rsi), UInt64(regs.rdx), UInt64(regs.r10), UInt64(regs.r8), UInt64(regs.r9))
        info.instruction_pointer = UInt64(regs.rip)
        info.stack_pointer = UInt64(regs.rsp)
        lateEntry = true
        defer { lateEntry = false }
        syscallEntry(tracee, info)
    }

    /// True while a clone's entry is handled at its event stop (the child exists already:
    /// what the kernel stored during clone, CLONE_PARENT_SETTID, is in the parent's pages).
    public private(set) var lateEntry = false

    private func syscallExit(_ tracee: Tracee, _ info: cow_syscall_info) {
        guard let call = tracee.inFlight else { return }  // attached mid-call
        tracee.inFlight = nil
        let outcome = SyscallOutcome(rval: info.rval, isError: info.is_error != 0)
        tracee.finished = (call, outcome)
        defer { tracee.finished = nil }
        finishLine(tracee, call, outcome)
        observer?.syscallExited(tracee, call.arguments, outcome, clone: call.clone, tracer: self)
        if let request = call.clone, case .value(let child) = outcome, child > 0 {
            reportClone(tracee, request: request, child: pid_t(child))
        }
    }

    /// The strace-style line of the syscall whose exit stop `tracee` is in (built here when -q
    /// did not log it), for a split blamed on that call.
    public func finishedSyscallLine(_ tracee: Tracee) -> String? {
        guard let (call, outcome) = tracee.finished else { return nil }
        let memory = self.memory(of: tracee.tgid)
        let entry = call.logged ? call.entryText : call.decoder.entry(call.arguments, memory)
        let exit = outcome == .noReturn ? "" : call.decoder.exit(call.arguments, outcome, memory)
        return call.arguments.name + "(" + entry + exit + ") = " + SyscallDecoders.result(outcome, style: call.decoder.returnStyle)
    }

    private func finishLine(_ tracee: Tracee, _ call: InFlightSyscall, _ outcome: SyscallOutcome) {
        guard call.logged else { return }
        let memory = self.memory(of: tracee.tgid)
        let exitText = outcome == .noReturn ? "" : call.decoder.exit(call.arguments, outcome, memory)
        let style = call.decoder.returnStyle
        var ret: Int64?
        var errno: String?
        switch outcome {
        case .value(let v): ret = style != .never ? v : nil
        case .error(let e): (ret, errno) = (-1, ErrnoNames.name(e))
        case .noReturn: break
        }
        stream.emit(.syscall(SyscallRecord(tid: tracee.tid, name: call.arguments.name, entryText: call.entryText, exitText: exitText,
                                           result: SyscallDecoders.result(outcome, style: style), ret: ret, errno: errno)))
    }

    private func reportClone(_ parent: Tracee, request: CloneRequest, child: pid_t) {
        let shared = observer?.sharedPageCount(child: child)
        stream.emit(.clone(CloneRecord(
            pid: parent.tgid, child: child, syscall: request.call.rawValue, flags: request.flags.names,
            exitSignal: request.exitSignal == 0 ? nil : SignalNames.name(request.exitSignal),
            childTidPointer: request.childTidPointer, parentTid: request.parentTidPointer,
            sharesMemory: request.sharesMemory, sharedPages: shared ?? 0)))
    }

    // MARK: Event stops

    private func eventStop(_ tracee: Tracee, _ event: PtraceEvent, signal: Int32) {
        switch event {
        case .fork, .vfork, .clone:
            // Run with PTRACE_CONT (-q, nothing shared): the call's entry is seen only now,
            // its arguments still in the registers.
            if tracee.inFlight == nil { lateSyscallEntry(tracee) }
            if let message = try? Ptrace.eventMessage(tracee.tid) {
                let childTid = pid_t(truncatingIfNeeded: message)
                let request = tracee.inFlight?.clone
                let child: Tracee
                if let existing = tracees[childTid] {
                    child = existing
                } else {
                    let isThread = request?.isThread ?? (event == .clone && threadGroup(of: childTid) == tracee.tgid)
                    child = Tracee(tid: childTid, tgid: isThread ? tracee.tgid : childTid, seized: tracee.seized)
                    add(child)
                }
                observer?.created(child, by: tracee, request: request, tracer: self)
            }
            resume(tracee)
            // Set even when the resume was deferred (a stop of its own queued, or held): it
            // is resumed later from elsewhere, straight into the vfork wait, and a pause
            // that then waits for it waits forever (its next stop clears the mark).
            if event == .vfork { tracee.waitsForVforkChild = true }
        case .exec:
            let former = pid_t(truncatingIfNeeded: (try? Ptrace.eventMessage(tracee.tid)) ?? UInt(tracee.tid))
            if former != tracee.tid, let old = tracees.removeValue(forKey: former) {
                // A non-leader thread exec'd: it takes over the leader's tid.
                old.tid = tracee.tid
                old.inFlight = old.inFlight ?? tracee.inFlight
                tracees[tracee.tid] = old
                stream.traceeCount = tracees.count
            }
            let current = tracees[tracee.tid] ?? tracee
            current.execCount += 1
            processes.close(current.tgid)
            if current.tgid == mainPid { mainExeced = true }
            observer?.execed(current, tracer: self)
            // Reopened only now: the observer's bookkeeping for the old address space closes
            // what it holds for the pid, and a process left out of the table gets a passing
            // object per access (its pagemap, mem and maps reopened and reread every time).
            processes.open(current.tgid)
            // -q, an execve not logged: its exit stop would tell nothing (the new program
            // shares no page), so it runs on with PTRACE_CONT from here unless the observer
            // wants it stopped.
            if configuration.quiet, let call = current.inFlight, !call.logged, call.clone == nil { current.inFlight = nil }
            resume(current)
        case .exit:
            observer?.exiting(tracee, tracer: self)
            resume(tracee)
        case .stop:
            if tracee.awaitingFirstStop {
                tracee.awaitingFirstStop = false
                observer?.firstStop(tracee, tracer: self)
                resume(tracee)
            } else if SignalNames.isStopSignal(signal) {
                // A group-stop of a seized tracee: stay stopped but keep reporting.
                if (try? Ptrace.listen(tracee.tid)) != nil { tracee.stopped = false }
            } else {
                resume(tracee)
            }
        case .seccomp:
            resume(tracee)
        case .vforkDone:
            resume(tracee)
        }
    }

    // MARK: Signal stops

    private func signalStop(_ tracee: Tracee, _ signal: Int32) {
        if signal == SIGCONT && launchContinuePending && tracee.tid == mainPid && !mainExeced {
            launchContinuePending = false
            resume(tracee)  // ours, from launch
            return
        }
        if tracee.awaitingFirstStop && signal == SIGSTOP {
            tracee.awaitingFirstStop = false
            observer?.firstStop(tracee, tracer: self)
            resume(tracee)
            return
        }
        if signal == SIGSTOP && ourStopPending.remove(tracee.tid) != nil {
            resume(tracee)  // ours, from pauseAll: not the program's
            return
        }
        if signal == SIGTRAP, observer?.ownTrap(tracee, tracer: self) == true {
            resume(tracee)
            return
        }
        guard let info = try? Ptrace.signalInfo(tracee.tid) else {
            // No siginfo: a group-stop of a tracee attached with TRACEME. Without PTRACE_SEIZE
            // it cannot be held in LISTEN; let it go on, as strace does.
            resume(tracee)
            return
        }
        if signal == SIGTRAP, let observer {
            var copy = info
            let details = SignalDetails(signal: signal, code: cow_siginfo_code(&copy), address: UInt64(cow_siginfo_addr(&copy)),
                                        perfData: cow_siginfo_perf_data(&copy), perfFlags: cow_siginfo_perf_flags(&copy))
            if observer.trapped(tracee, info: details, tracer: self) {
                resume(tracee)
                return
            }
        }
        if !configuration.quiet {
            stream.emit(.signal(tid: tracee.tid, text: "--- \(SignalNames.name(signal)) \(SignalInfoFormat.describe(info, signal: signal)) ---"))
        }
        resume(tracee, signal: signal)
    }

    // MARK: Exits

    private func exited(_ pid: pid_t, _ status: WaitStatus) {
        guard let tracee = tracees[pid] else { return }
        if let call = tracee.inFlight {
            tracee.inFlight = nil
            finishLine(tracee, call, .noReturn)
        }
        switch status {
        case .exited(let code): stream.emit(.exit(ExitRecord(tid: pid, isLeader: tracee.isLeader, how: .exited(code: code))))
        case .killed(let signal, let core): stream.emit(.exit(ExitRecord(tid: pid, isLeader: tracee.isLeader, how: .killed(signal: signal, coreDumped: core))))
        default: break
        }
        tracees.removeValue(forKey: pid)
        stream.traceeCount = max(1, tracees.count)
        if pid == mainPid { mainTermination = status }
        if tracee.isLeader && !tracees.values.contains(where: { $0.tgid == tracee.tgid }) {
            processes.close(tracee.tgid)
        }
        observer?.gone(tracee, tracer: self)
    }

    // MARK: Resuming, interrupting, detaching

    public func resume(_ tracee: Tracee, signal: Int32 = 0) {
        guard tracees[tracee.tid] != nil else { return }  // detached at a break
        // A stop reaped meanwhile (a break's single step ran into the program's signal) is
        // queued for the loop: the tracee sits in that stop now, and the loop resumes it from
        // there, with that stop's signal. Resuming it here would drop the signal.
        guard !waiter.hasQueued(tracee.tid) else { return }
        let mode = observer?.resumeMode(for: tracee, signal: signal, tracer: self) ?? .run
        let request: PtraceRequest
        switch mode {
        case .hold:
            return
        case .singleStep: request = .singleStep
        case .syscall: request = .syscall
        // Inside a syscall the exit stop is needed (to log it): PTRACE_SYSCALL.
        case .run: request = configuration.quiet && tracee.inFlight == nil ? .cont : .syscall
        }
        _ = restart(tracee.tid, request, signal: signal)
    }

    /// The one place a stopped tracee is set running (the loop's resume, a break's single
    /// step, drawing out queued signals before a detach): the trap flag a step leaves is
    /// cleared before any other way of running, and the tracee is marked running. False when
    /// it could not be resumed: ESRCH, killed meanwhile (SIGKILL, or exit_group of another
    /// thread), its exit status still to come through the waiter.
    /// The next status of a tracee `restart` set running, outside the loop; a stop marks it
    /// stopped again.
    func reapRestarted(_ tid: pid_t) -> Waiter.Reaped? {
        guard let reaped = waiter.reap(tid) else { return nil }
        switch reaped.status {
        case .exited, .killed, .continued, .unknown: break
        default: tracees[tid]?.stopped = true
        }
        return reaped
    }

    func restart(_ tid: pid_t, _ request: PtraceRequest, signal: Int32 = 0) -> Bool {
        let tracee = tracees[tid]
        if request == .singleStep {
            tracee?.mayHaveTrapFlag = true
        } else if tracee?.mayHaveTrapFlag == true {
            clearTrapFlag(tid)
            tracee?.mayHaveTrapFlag = false
        }
        guard (try? Ptrace.resume(tid, request, signal: signal)) != nil else { return false }
        tracee?.stopped = false
        return true
    }

    public func memory(of tgid: pid_t) -> TraceeMemory { processes[tgid].memory }

    /// Ctrl-C, SIGTERM…: with a launched program, as strace does, the signal goes to the
    /// program (its handlers run; it had it already when it came from the terminal to the
    /// whole process group) and the other processes are let go; the program is followed to
    /// its end. Attached processes are all let go, running.
    private func handleInterrupt(_ signal: Int32, first: Bool) {
        if launched {
            if first {
                stream.note("interrupted by \(SignalNames.name(signal)): passed to \(mainPid); the other processes are let go")
                let others = Set(tracees.values.map(\.tgid)).subtracting([mainPid])
                if !others.isEmpty {
                    pause(tracees.values.filter { others.contains($0.tgid) && !$0.stopped })
                    detachStopped(signal: 0, only: others)
                }
            }
            let fromTerminal = cow_interrupt_from_terminal() != 0 && getpgid(mainPid) == getpgrp()
            if !fromTerminal, tracees[mainPid] != nil { kill(mainPid, signal) }
        } else if first {
            detachAll()
            stream.note("interrupted by \(SignalNames.name(signal)): detached from \(mainPid), which runs on")
        }
    }

    /// Every wait goes through it; stops reaped by `pauseAll`, `settle` or a break's single
    /// step that are the program's (not our SIGSTOP/INTERRUPT) wait there for the loop.
    let waiter = Waiter()
    /// Tracees we sent a SIGSTOP of ours that has not been reported yet.
    private var ourStopPending: Set<pid_t> = []

    /// Stops every tracee that runs and waits until each has stopped (or exited). A stop
    /// that is not ours is kept for the loop, so nothing the program does is lost.
    public func pauseAll() { pause(tracees.values.filter { !$0.stopped }) }

    /// Stops the other threads of a process that run user code (a thread blocked in a
    /// syscall, its entry seen, is left alone: stopping it would interrupt the call), and
    /// waits until each has stopped. Their own stops are kept for the loop.
    public func pauseThreads(of tgid: pid_t, except tid: pid_t) {
        pause(tracees.values.filter { $0.tgid == tgid && $0.tid != tid && !$0.stopped && !isBlockedInSyscall($0) })
    }

    /// Resumes the threads of a process left stopped (paused or held), but those being
    /// handled or with a stop of their own still to handle.
    public func resumeThreads(of tgid: pid_t) { resumeStopped { $0.tgid == tgid } }

    /// Whether every thread of `tgid` but `tid` is in a stop we reaped and have not yet
    /// handled nor resumed from; none with a stop of its own still queued (handling it may
    /// let it go on: from its exit stop the kernel stores its CLONE_CHILD_CLEARTID word on
    /// the way out), and no thread /proc lists that we have not seen stop (a new one whose
    /// CLONE_CHILD_SETTID store may still come). A stopped thread runs nothing.
    public func othersStopped(of tgid: pid_t, except tid: pid_t) -> Bool {
        ProcFS.threads(of: tgid).allSatisfy { other in
            other == tid || tracees[other].map { $0.tgid == tgid && $0.stopped && !hasDeferredStop(other) && !isHandling(other) } == true
        }
    }

    /// Makes a running tracee stop. PTRACE_INTERRUPT works on seized tracees only; the
    /// others get a SIGSTOP of ours, recognised and swallowed when it is reported. A seized
    /// tracee is always interrupted, even one whose first stop is due: an attached thread's
    /// first stop may never come as such (any other stop takes an interrupt's place), and an
    /// interrupt while a STOP trap is pending adds no second stop.
    private func requestStop(_ tracee: Tracee) {
        if tracee.seized {
            _ = try? Ptrace.interrupt(tracee.tid)
        } else if !tracee.awaitingFirstStop, ourStopPending.insert(tracee.tid).inserted {
            _ = cow_tgkill(tracee.tgid, tracee.tid, SIGSTOP)
        }
    }

    /// Blocked inside a syscall whose entry stop we saw: it has run no user code since.
    private func isBlockedInSyscall(_ tracee: Tracee) -> Bool {
        guard tracee.inFlight != nil, let state = Self.schedulerState(tracee.tid) else { return false }
        return state == "S" || state == "D"
    }

    private func hasDeferredStop(_ tid: pid_t) -> Bool { waiter.hasQueued(tid) }

    /// Resumes the stopped tracees `which` selects, but those being handled or with a stop
    /// of their own still to handle (the loop resumes those).
    private func resumeStopped(where which: (Tracee) -> Bool) {
        for tracee in tracees.values where tracee.stopped && which(tracee) && !hasDeferredStop(tracee.tid) && !isHandling(tracee.tid) {
            resume(tracee)
        }
    }

    /// A parent waiting for its vfork child is not waited for: it cannot stop before the
    /// child lets it go, and the child may be one of those stopped here.
    private func pause(_ running: [Tracee]) {
        let stoppable = running.filter { !$0.waitsForVforkChild }
        stoppable.forEach(requestStop)
        var waiting = Set(stoppable.map(\.tid))
        while !waiting.isEmpty {
            guard let reaped = try? waiter.wait() else { break }
            let (pid, status) = (reaped.pid, reaped.status)
            waiting.remove(pid)
            switch status {
            case .exited, .killed:
                exited(pid, status)
            case .continued, .unknown:
                waiting.insert(pid)
            case .signalStop(SIGSTOP) where ourStopPending.contains(pid) && tracees[pid]?.awaitingFirstStop == false:
                ourStopPending.remove(pid)
                tracees[pid]?.stopped = true
            case .eventStop(.stop, _) where tracees[pid]?.seized == true && tracees[pid]?.awaitingFirstStop == false:
                tracees[pid]?.stopped = true
            default:
                if tracees[pid] == nil { _ = newborn(pid) }
                tracees[pid]?.stopped = true
                waiter.enqueue(reaped)
            }
        }
    }

    /// Lets every tracee paused by `pauseAll` go on, but the one being handled and `other`
    /// (their handlers resume them); stops of their own are handled by the loop.
    public func resumePaused(except other: pid_t?) { resumeStopped { $0.tid != other } }

    /// A stop reaped outside the loop (the break prompt's single step), for the loop to handle.
    func handleLater(_ pid: pid_t, _ status: WaitStatus) {
        switch status {
        case .exited, .killed: exited(pid, status)
        default: waiter.enqueue(Waiter.Reaped(pid: pid, status: status))
        }
    }

    /// The tracees whose stops are being handled (more than one while `settle` runs).
    private var handling: [pid_t] = []
    private func isHandling(_ tid: pid_t) -> Bool { handling.contains(tid) }

    /// Lets the threads of `processes` report the stops they have made, before a change seen
    /// elsewhere is blamed (pagemap without frame numbers cannot tell who copied a page two
    /// processes shared). A thread blocked in a syscall whose entry stop we saw has run no
    /// user code since; any other thread is made to stop, and the stop it reports (its
    /// page-fault trap or syscall stop comes before our SIGSTOP) is handled now. Returns the
    /// processes that could not be asked: stopped in a stop still being handled.
    public func settle(_ processes: Set<pid_t>, except thread: pid_t? = nil) -> Set<pid_t> {
        var busy: Set<pid_t> = []
        for tracee in tracees.values.filter({ processes.contains($0.tgid) && $0.tid != thread }) where tracees[tracee.tid] === tracee {
            if tracee.stopped {
                if isHandling(tracee.tid) {
                    // At a syscall entry it has nothing more to report; elsewhere its stop
                    // may still show a store of its own (a fault, a syscall's exit).
                    if !tracee.atSyscallEntry { busy.insert(tracee.tgid) }
                } else {
                    // A stop reaped earlier and queued for the loop: reported now, as a
                    // stop reaped here is (left queued, it made the process a contender).
                    for item in waiter.take(where: { $0.pid == tracee.tid }) { handle(item.pid, item.status) }
                }
                continue
            }
            // Held in vfork, it runs no user code and cannot stop before its child lets it go.
            if isBlockedInSyscall(tracee) || tracee.waitsForVforkChild { continue }
            requestStop(tracee)
            if let reaped = waiter.reap(tracee.tid) { handle(reaped.pid, reaped.status) }
        }
        return busy
    }

    static func schedulerState(_ tid: pid_t) -> Character? { ProcFS.state(tid) }

    /// Lets every tracee go (all stopped, after `pauseAll`), leaving nothing of ours behind:
    /// the observer's perf events are closed first, traps of ours still queued are drawn
    /// out and swallowed, and only the program's own signals are passed on. With `SIGSTOP`
    /// each process is left stopped (a SIGSTOP queued while it is still held, so no
    /// instruction runs in between).
    public func detachStopped(signal: Int32) { detachStopped(signal: signal, only: nil) }

    /// `detachStopped` for the processes in `only` (all when nil); theirs must be stopped.
    private func detachStopped(signal: Int32, only: Set<pid_t>?) {
        // A thread not in a ptrace stop (a new one before its first stop, say) cannot be
        // detached: it would stay traced until cowtrace exits.
        let running = tracees.values.filter { (only?.contains($0.tgid) ?? true) && (try? Ptrace.registers($0.tid)) == nil }
        if !running.isEmpty {
            running.forEach { $0.stopped = false }
            pause(running)
        }
        let leaving = tracees.filter { only?.contains($0.value.tgid) ?? true }
        var pass: [pid_t: Int32] = [:]
        for item in waiter.take(where: { leaving[$0.pid] != nil }) {
            guard let tracee = leaving[item.pid] else {
                continue
            }
            guard case .signalStop(let s) = item.status else { continue }
            if tracee.awaitingFirstStop && s == SIGSTOP { continue }  // its first stop, not the program's
            if ourStopPending.remove(item.pid) != nil && s == SIGSTOP { continue }
            if !isOwnSignal(tracee, s) { pass[item.pid] = s }
        }
        for tracee in leaving.values { observer?.willDetach(tracee, tracer: self) }
        for tgid in Set(leaving.values.map(\.tgid)) { drainOwnTraps(of: tgid, passing: &pass) }
        if signal != 0 {
            for tgid in Set(leaving.values.map(\.tgid)) { kill(tgid, signal) }
        }
        var detached: [Tracee] = []
        // Parents waiting for a vfork child run no user code, and cannot be detached until
        // they stop: once the others (their children among them) are let go, they do.
        let vforkParents = leaving.values.filter { $0.waitsForVforkChild && !$0.stopped }
        for (tid, tracee) in tracees where (only?.contains(tracee.tgid) ?? true) && !vforkParents.contains(where: { $0 === tracee }) {
            if ourStopPending.contains(tid) { pass[tid] = consumeOurStop(tid, passing: pass[tid] ?? 0) }
            var s = pass[tid] ?? 0
            if signal == SIGSTOP && SignalNames.isStopSignal(s) { s = 0 }
            if tracee.awaitingFirstStop && s == SIGSTOP { s = 0 }
            if tracee.mayHaveTrapFlag { clearTrapFlag(tid) }
            _ = try? Ptrace.detach(tid, signal: s)
            detached.append(tracee)
        }
        // Only once every thread is let go: the observer's bookkeeping for a thread gone may
        // resume its siblings (a fork's held threads), which must not run traced meanwhile.
        for tracee in detached {
            tracees.removeValue(forKey: tracee.tid)
            ourStopPending.remove(tracee.tid)
        }
        for tracee in detached { observer?.gone(tracee, tracer: self) }
        stream.traceeCount = max(1, tracees.count)
        let waiting = vforkParents.filter { tracees[$0.tid] === $0 }
        if !waiting.isEmpty {
            waiting.forEach { $0.waitsForVforkChild = false }
            pause(waiting)
            detachStopped(signal: signal, only: Set(waiting.map(\.tgid)))
        }
    }

    /// The kernel clears the trap flag of a single step when the tracee is resumed otherwise
    /// or detached, but only while it counts TF as the tracer's (TIF_FORCED_TF); a stepped
    /// instruction that saves and restores the flags (pushf/popf, a syscall's r11) can leave
    /// TF set as if the program had set it, and the next instruction then traps, with nobody
    /// to take the SIGTRAP. A thread single-stepped since its last check has TF cleared
    /// here, registers only.
    private func clearTrapFlag(_ tid: pid_t) {
        let trapFlag = 0x100
        guard var regs = try? Ptrace.registers(tid), Int(regs.eflags) & trapFlag != 0 else { return }
        regs.eflags &= ~UInt64(trapFlag)
        _ = try? Ptrace.setRegisters(tid, regs)
    }

    /// Whether the signal of `tracee`'s signal-delivery stop is the observer's.
    private func isOwnSignal(_ tracee: Tracee, _ signal: Int32) -> Bool {
        guard signal == SIGTRAP, let observer, let details = try? Ptrace.signalDetails(tracee.tid) else { return false }
        return observer.ownsSignal(tracee, info: details)
    }

    /// Draws out the SIGTRAPs still queued for the threads of `tgid` (for one thread, or for
    /// the process) and swallows those the observer raised: a queued trap would kill the
    /// program once nobody suppresses it. A thread is run only to take the signal: it is
    /// dequeued on the way back to user mode, before any instruction. A thread that blocks
    /// SIGTRAP (a perf trap raised then is queued asynchronously) has it unblocked for that
    /// moment with PTRACE_SETSIGMASK. The program's own signals met on the way are delivered
    /// (with the resume) or, for a SIGTRAP of its own, kept in `pass` for the detach.
    private func drainOwnTraps(of tgid: pid_t, passing pass: inout [pid_t: Int32]) {
        let trap = PendingSignals.bit(SIGTRAP)
        for _ in 0..<64 {
            let states = tracees.values.filter { $0.tgid == tgid }.compactMap { t in
                PendingSignals.read(tgid: tgid, tid: t.tid).map { (tracee: t, signals: $0) }
            }
            // A trap queued for one thread must be taken by that thread; one queued for the
            // process by any thread, preferably one that does not block it.
            var chosen = states.first { $0.signals.thread & trap != 0 && pass[$0.tracee.tid] != SIGTRAP }
            if chosen == nil, states.contains(where: { $0.signals.process & trap != 0 }) {
                let candidates = states.filter { pass[$0.tracee.tid] != SIGTRAP }
                chosen = candidates.first { $0.signals.blocked & trap == 0 } ?? candidates.first
            }
            guard let (thread, signals) = chosen else { return }
            let tid = thread.tid
            var restoreMask: UInt64?
            if signals.blocked & trap != 0, let mask = try? Ptrace.signalMask(tid) {
                if (try? Ptrace.setSignalMask(tid, mask & ~trap)) != nil { restoreMask = mask }
            }
            var inject = pass.removeValue(forKey: tid) ?? 0
            var stoppedAgain = false
            while restart(tid, .cont, signal: inject) {
                inject = 0
                guard let status = reapRestarted(tid)?.status else { break }
                switch status {
                case .exited, .killed:
                    exited(tid, status)
                case .signalStop(SIGTRAP):
                    if !isOwnSignal(thread, SIGTRAP) { pass[tid] = SIGTRAP }
                    stoppedAgain = true
                case .signalStop(let s):
                    inject = s  // the program's: delivered now, and the trap is still to come
                    continue
                case .eventStop(.stop, _):
                    stoppedAgain = true  // a group stop: it stays stopped after the detach
                case .eventStop(let event, _):
                    if event == .fork || event == .vfork || event == .clone, let child = try? Ptrace.eventMessage(tid) {
                        adoptDuringDrain(pid_t(truncatingIfNeeded: child), parent: thread)
                    }
                    continue
                default:
                    continue
                }
                break
            }
            if let mask = restoreMask { _ = try? Ptrace.setSignalMask(tid, mask) }  // fails only if it cannot be stopped
            if !stoppedAgain { return }  // gone, or could not be resumed: nothing more to draw
        }
    }

    /// A child created while a trap was drawn out (the thread was at a fork's entry): it is
    /// traced too, and let go with the others once its first stop has come.
    private func adoptDuringDrain(_ child: pid_t, parent: Tracee) {
        guard tracees[child] == nil else { return }
        let tracee = Tracee(tid: child, tgid: threadGroup(of: child) ?? child, seized: parent.seized)
        add(tracee)
        if waiter.reap(child) != nil { tracee.stopped = true }
    }

    /// Runs `tid` until our queued SIGSTOP is reported; returns a signal of the program's
    /// that arrived meanwhile (0 if none).
    private func consumeOurStop(_ tid: pid_t, passing signal: Int32) -> Int32 {
        var pass = signal
        var later: Int32 = 0
        while restart(tid, .cont, signal: pass) {
            pass = 0
            guard let reaped = reapRestarted(tid) else { break }
            switch reaped.status {
            case .signalStop(SIGSTOP):
                ourStopPending.remove(tid)
                return later
            case .signalStop(let s):
                later = s
                pass = s
            case .exited, .killed:
                return 0
            default:
                break
            }
        }
        return later
    }

    /// SIGKILL to every traced process; the loop reaps them.
    public func killAll() {
        _ = waiter.drain()
        for tgid in Set(tracees.values.map(\.tgid)) { kill(tgid, SIGKILL) }
    }

    /// Stops every tracee, then detaches it, passing on a pending signal.
    public func detachAll() {
        pauseAll()
        detachStopped(signal: 0)
    }

    /// Reads what the spawn helper reported if execve failed.
    private func spawnFailure() -> String? {
        guard spawnErrorFD >= 0 else { return nil }
        defer { close(spawnErrorFD); spawnErrorFD = -1 }
        var err: Int32 = 0
        let n = read(spawnErrorFD, &err, MemoryLayout<Int32>.size)
        return n == MemoryLayout<Int32>.size ? ErrnoNames.message(err) : nil
    }

    static func threads(of pid: pid_t) -> [pid_t] { ProcFS.threads(of: pid) }

    static func currentEnvironment() -> [String] {
        var result: [String] = []
        var cursor = environ
        while let entry = cursor.pointee {
            result.append(String(cString: entry))
            cursor += 1
        }
        return result
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
