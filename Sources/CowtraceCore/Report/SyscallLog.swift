import Glibc

/// The strace-style text log. Knows strace's layout rules: "[pid N] " prefixes while more than
/// one tracee exists, " = result" starting at column 39, and "<unfinished ...>" / "<... name resumed>"
/// when another tracee prints between a call's entry and its exit.
public final class SyscallLog {
    private let sink: OutputSink
    /// The tracee whose line is open (entry printed, exit not yet), with the syscall name.
    private var open: (tid: pid_t, name: String)?
    /// Column of the cursor on the current output line.
    private var column = 0
    /// How many tracees exist; more than one turns on pid prefixes.
    public var traceeCount = 1

    static let resultColumn = 39

    public init(sink: OutputSink) { self.sink = sink }

    private func prefix(_ tid: pid_t) -> String {
        guard traceeCount > 1 else { return "" }
        let digits = String(tid)
        return "[pid " + String(repeating: " ", count: max(0, 5 - digits.count)) + digits + "] "
    }

    private func emit(_ text: String) {
        sink.write(text)
        if let newline = text.utf8.lastIndex(of: 10) {
            column = text.utf8.distance(from: newline, to: text.utf8.endIndex) - 1
        } else {
            column += text.utf8.count
        }
    }

    /// Closes another tracee's open line before this one prints.
    private func interrupt(for tid: pid_t) {
        if let current = open, current.tid != tid {
            emit(" <unfinished ...>\n")
            open = nil
        }
    }

    /// Prints "name(entry-args" and leaves the line open.
    public func begin(tid: pid_t, name: String, entry: String) {
        interrupt(for: tid)
        if open != nil { emit(" <unfinished ...>\n") }
        emit(prefix(tid) + name + "(" + entry)
        open = (tid, name)
    }

    /// Prints the rest of the call: output arguments, ")", padding to column 40, " = result".
    public func finish(tid: pid_t, name: String, exit: String, result: String) {
        if let current = open, current.tid == tid {
            emit(exit + ")")
        } else {
            interrupt(for: tid)
            emit(prefix(tid) + "<... " + name + " resumed>" + exit + ")")
        }
        open = nil
        if column < Self.resultColumn {
            emit(String(repeating: " ", count: Self.resultColumn - column))
        }
        emit(" = " + result + "\n")
    }

    /// A whole line of its own: "+++ exited with 0 +++", "--- SIGCHLD {…} ---".
    public func line(tid: pid_t, _ text: String) {
        interrupt(for: tid)
        if open != nil { emit(" <unfinished ...>\n"); open = nil }
        emit(prefix(tid) + text + "\n")
    }

    /// The same, with the text appended as bytes by `build` straight into the output buffer
    /// (a split's line: no String built per split); `value` is handed to `build`, not
    /// captured (a capture would copy a split).
    public func line<Value>(tid: pid_t, _ value: Value, build: (Value, inout [UInt8]) -> Void) {
        interrupt(for: tid)
        if open != nil { emit(" <unfinished ...>\n"); open = nil }
        if traceeCount > 1 {
            sink.append(tid) { tid, out in
                // "[pid NNNNN] ", the pid right-aligned in 5 columns.
                out.append(contentsOf: "[pid ".utf8)
                let digits = decimalDigits(Int(tid))
                if digits < 5 { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 5 - digits)) }
                appendDecimal(Int(tid), into: &out)
                out.append(contentsOf: "] ".utf8)
            }
        }
        sink.append(value) { value, out in
            build(value, &out)
            out.append(10)
        }
        column = 0
    }

    /// A cowtrace annotation under the current line, indented past the pid prefix.
    public func annotation(tid: pid_t, _ text: String) {
        interrupt(for: tid)
        if open != nil { emit(" <unfinished ...>\n"); open = nil }
        emit(String(repeating: " ", count: traceeCount > 1 ? 11 : 0) + text + "\n")
    }

    /// A line about cowtrace itself ("cowtrace: …"), never prefixed.
    public func message(_ text: String) {
        if open != nil {
            emit(" <unfinished ...>\n")
            open = nil
        }
        emit("cowtrace: " + text + "\n")
    }

    /// A line with no prefix at all (the summary).
    public func plain(_ text: String) {
        if open != nil {
            emit(" <unfinished ...>\n")
            open = nil
        }
        emit(text + "\n")
    }

    /// Drops the open line of a tracee that vanished without finishing its call.
    public func forget(tid: pid_t) {
        if open?.tid == tid { emit("\n"); open = nil }
    }

    public func flush() { sink.flush() }
}

/// How many decimal digits `value` has (a minus sign counts as one).
func decimalDigits(_ value: Int) -> Int {
    var v = value.magnitude, n = value < 0 ? 2 : 1
    while v >= 10 { v /= 10; n += 1 }
    return n
}

/// `value` in decimal, appended as bytes.
func appendDecimal(_ value: Int, into out: inout [UInt8]) {
    if value < 0 { out.append(UInt8(ascii: "-")) }
    var v = value.magnitude, divisor: UInt = 1
    while v / divisor >= 10 { divisor *= 10 }
    while divisor > 0 {
        out.append(UInt8(ascii: "0") + UInt8(v / divisor))
        v %= divisor
        divisor /= 10
    }
}
