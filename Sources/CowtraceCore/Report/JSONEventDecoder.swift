import Glibc

/// Reads a `--json` log back into the `TraceEvent` values it was written from (the inverse of
/// `JSONEventEncoder`, line by line). What the log does not carry comes back empty: a split's
/// source-line text, a syscall's entry/exit halves (the whole line is kept), whether a killed
/// process dumped core. `stack` and `process` lines are tables, not events: they are read
/// into the decoder's state and give no event. The summary is recomputed from the events
/// (`cowtrace report`), so a `summary` line gives none either.
public struct JSONEventDecoder {
    private var stacks: [Int: [BacktraceFrame]] = [0: []]

    public init() {}

    public mutating func decode(_ object: JSONValue) throws(CowtraceError) -> TraceEvent? {
        let o = object.resolved
        guard let kind = o["event"]?.stringValue else { throw CowtraceError("no \"event\" field") }
        switch kind {
        case "stack":
            stacks[try int(o, "id")] = try (o["frames"]?.arrayValue ?? []).map(Self.frame)
            return nil
        case "process", "summary":
            return nil
        case "syscall":
            let text = try string(o, "text")
            let name = try string(o, "name")
            let bytes = Array(text.utf8), separator = Array(") = ".utf8)
            // The last ") = ": arguments may hold one, the result cannot.
            guard text.hasPrefix(name + "("), bytes.count >= separator.count,
                  let at = (0...(bytes.count - separator.count)).last(where: { bytes[$0..<$0 + separator.count].elementsEqual(separator) }),
                  at >= name.utf8.count + 1 else {
                throw CowtraceError("syscall text without 'name(…) = result': \(text)")
            }
            return .syscall(SyscallRecord(tid: try pid(o, "pid"), name: name,
                                          entryText: String(decoding: bytes[(name.utf8.count + 1)..<at], as: UTF8.self), exitText: "",
                                          result: String(decoding: bytes[(at + separator.count)...], as: UTF8.self),
                                          ret: o["ret"]?.intValue, errno: o["errno"]?.stringValue))
        case "clone":
            return .clone(CloneRecord(pid: try pid(o, "pid"), child: try pid(o, "child"), syscall: try string(o, "syscall"),
                                      flags: (o["flags"]?.arrayValue ?? []).compactMap(\.stringValue),
                                      exitSignal: o["exit_signal"]?.stringValue, childTidPointer: o["child_tidptr"]?.hexValue,
                                      parentTid: o["parent_tid"]?.hexValue, sharesMemory: o["shares_memory"]?.boolValue ?? false,
                                      sharedPages: Int(o["shared_pages"]?.intValue ?? 0)))
        case "shared":
            return .shared(SharedPages(parent: try pid(o, "pid"), child: try pid(o, "child"), call: try string(o, "syscall"),
                                       anon: try int(o, "anon"), file: try int(o, "file"), zero: try int(o, "zero")))
        case "split":
            return .split(try split(o))
        case "reuse":
            return .reuse(Reuse(pid: try pid(o, "pid"), page: try hex(o, "page"), region: try string(o, "region"),
                                frame: o["frame"]?.hexValue ?? 0, ip: o["ip"]?.hexValue))
        case "drop":
            return .drop(Drop(pid: try pid(o, "pid"), pages: [Drop.Page(page: try hex(o, "page"), region: try string(o, "region"),
                                                                         frame: o["frame"]?.hexValue ?? 0)],
                              reason: try string(o, "reason")))
        case "exit":
            let tid = try pid(o, "pid")
            if let code = o["status"]?.intValue { return .exit(ExitRecord(tid: tid, isLeader: true, how: .exited(code: Int32(code)))) }
            guard let name = o["signal"]?.stringValue, let signal = SignalNames.number(name) else {
                throw CowtraceError("exit with neither status nor a known signal")
            }
            return .exit(ExitRecord(tid: tid, isLeader: true, how: .killed(signal: signal, coreDumped: false)))
        case "note":
            return .note(try string(o, "text"))
        default:
            return nil  // an event a later version added: nothing this reader knows of it
        }
    }

    private func split(_ o: JSONValue) throws(CowtraceError) -> Split {
        let cause: SplitCause
        switch try string(o, "cause") {
        case "instruction":
            var write = InstructionWrite(ip: try hex(o, "ip"), bytes: Self.bytes(o["bytes"]?.stringValue ?? ""),
                                         text: try string(o, "instruction"), address: try hex(o, "address"), size: try int(o, "size"))
            let ranges = (o["ranges"]?.arrayValue ?? []).compactMap { r in
                r["address"]?.hexValue.flatMap { address in r["size"]?.intValue.map { WriteRange(address: address, size: Int($0)) } }
            }
            if ranges.count > 1 { write.ranges = ranges }
            cause = .instruction(write)
        case "syscall":
            let name = try string(o, "syscall")
            cause = .syscall(SyscallCall(name: name, line: o["syscall_line"]?.stringValue ?? name))
        case "clone":
            guard let store = CloneStore(rawValue: try string(o, "clone_flag")) else { throw CowtraceError("unknown clone_flag") }
            cause = .clone(store, pointer: try hex(o, "address"))
        case "kernel":
            cause = .kernel(o["detail"]?.stringValue.flatMap(KernelStore.init(rawValue:)))
        case "unknown":
            cause = .unknown(note: o["note"]?.stringValue ?? "")
        case let other:
            throw CowtraceError("unknown cause '\(other)'")
        }
        guard let engine = EngineKind(rawValue: try string(o, "engine")) else { throw CowtraceError("unknown engine") }
        guard let kind = PageKind(rawValue: try string(o, "kind")) else { throw CowtraceError("unknown page kind") }
        var split = Split(page: try hex(o, "page"), region: try string(o, "region"), kind: kind, writer: try pid(o, "writer"),
                          others: (o["others"]?.arrayValue ?? []).compactMap { $0.intValue.map { pid_t(truncatingIfNeeded: $0) } },
                          frameBefore: o["frame_before"]?.hexValue ?? 0, frameAfter: o["frame_after"]?.hexValue ?? 0,
                          cause: cause, engine: engine)
        split.hugePage = o["huge_page"]?.boolValue
        if let id = o["stack"]?.intValue {
            guard let frames = stacks[Int(id)] else { throw CowtraceError("split names stack \(id), not defined before") }
            split.backtrace = frames
        } else {
            split.backtrace = try (o["backtrace"]?.arrayValue ?? []).map(Self.frame)
        }
        return split
    }

    static func frame(_ f: JSONValue) throws(CowtraceError) -> BacktraceFrame {
        guard let ip = f["ip"]?.hexValue else { throw CowtraceError("frame without ip") }
        return BacktraceFrame(ip: ip, symbol: f["symbol"]?.stringValue, offset: f["offset"]?.intValue.map { UInt64($0) },
                              module: f["module"]?.stringValue, moduleOffset: f["module_offset"]?.hexValue, source: f["source"]?.stringValue)
    }

    /// "48 89 07" as bytes.
    static func bytes(_ text: String) -> [UInt8] { text.split(separator: " ").compactMap { UInt8($0, radix: 16) } }

    private func string(_ o: JSONValue, _ key: String) throws(CowtraceError) -> String {
        guard let v = o[key]?.stringValue else { throw CowtraceError("no string \"\(key)\"") }
        return v
    }

    private func int(_ o: JSONValue, _ key: String) throws(CowtraceError) -> Int {
        guard let v = o[key]?.intValue else { throw CowtraceError("no number \"\(key)\"") }
        return Int(v)
    }

    private func pid(_ o: JSONValue, _ key: String) throws(CowtraceError) -> pid_t {
        guard let v = o[key]?.intValue, let p = pid_t(exactly: v) else { throw CowtraceError("no pid \"\(key)\"") }
        return p
    }

    private func hex(_ o: JSONValue, _ key: String) throws(CowtraceError) -> UInt64 {
        guard let v = o[key]?.hexValue else { throw CowtraceError("no address \"\(key)\"") }
        return v
    }
}
