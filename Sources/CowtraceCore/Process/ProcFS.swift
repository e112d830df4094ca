import Glibc

/// One home for what cowtrace reads of /proc/PID besides maps, pagemap and mem: status
/// fields, the scheduler state, the thread list. The parsers are pure (text in, values out).
public enum ProcFS {
    /// /proc/PID/status as name -> value ("Tgid" -> "1234", "SigBlk" -> "0000000000000000").
    public struct Status: Sendable {
        public let fields: [String: String]

        public init(parsing text: String) {
            var fields: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmed(of: " \t")
            }
            self.fields = fields
        }

        public func pid(_ name: String) -> pid_t? { fields[name].flatMap { pid_t($0) } }

        /// A signal set field (SigBlk, SigCgt, SigIgn, SigPnd, ShdPnd): bit N-1 is signal N.
        public func signals(_ name: String) -> UInt64? { fields[name].flatMap { UInt64($0, radix: 16) } }

        public func contains(_ signal: Int32, in name: String) -> Bool? {
            signals(name).map { $0 & (1 << UInt64(signal - 1)) != 0 }
        }
    }

    public static func status(_ tid: pid_t) -> Status? {
        guard let bytes = try? readWholeFile("/proc/\(tid)/status", pid: tid) else { return nil }
        return Status(parsing: String(decoding: bytes, as: UTF8.self))
    }

    /// The state letter of /proc/TID/stat (R, S, D, t, Z, …): after the last ')', since the
    /// command name in parentheses may itself hold spaces and parentheses.
    public static func state(parsingStat bytes: [UInt8]) -> Character? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return nil }
        return Character(UnicodeScalar(bytes[close + 2]))
    }

    /// Gone, a zombie, or on its way out (PF_EXITING in the flags field): its memory may be
    /// torn down already (its pagemap then reads as empty) while its state still says R.
    public static func isExiting(_ pid: pid_t) -> Bool {
        guard let bytes = try? readWholeFile("/proc/\(pid)/stat", pid: pid),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return true }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 6, let flags = UInt64(String(decoding: fields[6], as: UTF8.self)) else { return true }
        let pfExiting: UInt64 = 0x4
        return fields[0].first == UInt8(ascii: "Z") || fields[0].first == UInt8(ascii: "X") || flags & pfExiting != 0
    }

    /// The parent's pid in /proc/TID/stat (the field after the state letter).
    public static func parentPid(parsingStat bytes: [UInt8]) -> pid_t? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return nil }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "), maxSplits: 2)
        return fields.count > 1 ? pid_t(String(decoding: fields[1], as: UTF8.self)) : nil
    }

    public static func parentPid(_ tid: pid_t) -> pid_t? {
        (try? readWholeFile("/proc/\(tid)/stat", pid: tid)).flatMap(parentPid(parsingStat:))
    }

    public static func state(_ tid: pid_t) -> Character? {
        (try? readWholeFile("/proc/\(tid)/stat", pid: tid)).flatMap(state(parsingStat:))
    }

    /// The threads of a process, from /proc/PID/task.
    public static func threads(of pid: pid_t) -> [pid_t] {
        guard let dir = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(dir) }
        var tids: [pid_t] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if let tid = pid_t(name) { tids.append(tid) }
        }
        return tids.sorted()
    }
}

extension StringProtocol {
    func trimmed(of set: String) -> String {
        let skip = Set(set)
        guard let first = firstIndex(where: { !skip.contains($0) }), let last = lastIndex(where: { !skip.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}
