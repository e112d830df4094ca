/// Makes two strace-format logs comparable: joins "<unfinished ...>" with its
/// "<... name resumed>" line, drops "[pid N] " prefixes, and names pids by order of appearance.
enum StraceLines {
    static let cloneFamily = ["clone(", "clone3(", "fork(", "vfork("]

    /// Joined lines, without pid prefixes.
    static func joined(_ text: String) -> [String] { joinedWithPid(text).map(\.line) }

    /// Joined lines with the pid of their prefix ("main" where there is none).
    static func joinedWithPid(_ text: String) -> [(pid: String, line: String)] {
        var open: [String: String] = [:]  // pid -> start of line
        var result: [(pid: String, line: String)] = []
        for raw in text.split(separator: "\n") {
            var line = String(raw)
            var pid = "main"
            if line.hasPrefix("[pid "), let close = line.firstIndex(of: "]") {
                pid = line[line.index(line.startIndex, offsetBy: 5)..<close].trimmingCharacters(in: .whitespaces)
                line = String(line[line.index(after: close)...].dropFirst())
            }
            if line.hasSuffix(" <unfinished ...>") {
                open[pid] = String(line.dropLast(" <unfinished ...>".count))
                continue
            }
            if line.hasPrefix("<... "), let end = line.range(of: " resumed>") {
                // The prefix can differ between the halves: it disappears once only one
                // tracee is left (strace does the same). Fall back to the call's name.
                let name = String(line[line.index(line.startIndex, offsetBy: 5)..<end.lowerBound])
                let key = open[pid]?.hasPrefix(name + "(") == true ? pid : open.first { $0.value.hasPrefix(name + "(") }?.key
                let start = key.flatMap { open.removeValue(forKey: $0) } ?? ""
                line = start + line[end.upperBound...]
            }
            result.append((pid, line))
        }
        return result
    }

    /// Only clone-family calls, with whitespace before " = " collapsed and pids replaced by
    /// PID1, PID2… in order of appearance (the only thing that differs between two runs).
    static func cloneCalls(_ text: String) -> [String] {
        var names: [String: String] = [:]
        func name(_ pid: String) -> String {
            if let n = names[pid] { return n }
            let n = "PID\(names.count + 1)"
            names[pid] = n
            return n
        }
        // A call interrupted by a signal and restarted ("= ? ERESTARTNOINTR") depends on
        // timing, not on the tracer: only completed calls are compared.
        return joined(text).filter { line in cloneFamily.contains { line.hasPrefix($0) } && !line.contains("= ? ERESTART") }.map { line in
            var line = line
            if let eq = line.range(of: " = ", options: .backwards) {
                let head = line[..<eq.lowerBound].replacingOccurrences(of: #"\s+$"#, with: "", options: .regularExpression)
                let value = line[eq.upperBound...]
                line = head + " = " + (Int(value) != nil ? name(String(value)) : String(value))
            }
            // parent_tid=[1234] holds the child's pid too.
            if let r = line.range(of: #"parent_tid=\[\d+\]"#, options: .regularExpression) {
                let digits = line[r].dropFirst("parent_tid=[".count).dropLast()
                line.replaceSubrange(r, with: "parent_tid=[\(name(String(digits)))]")
            }
            return line
        }
    }
}

import Foundation
