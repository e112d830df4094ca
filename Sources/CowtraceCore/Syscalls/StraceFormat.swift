/// strace's ways of printing values: addresses, flag sets, quoted buffers.
public enum StraceFormat {
    /// strace's -s default: at most 32 bytes of a string are shown.
    public static let maxStringLength = 32

    /// printaddr: NULL or 0x…
    public static func address(_ value: UInt64) -> String {
        value == 0 ? "NULL" : hex(value)
    }

    public static func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    /// PRINT_VAL_X: 0 stays "0".
    public static func hexOrZero(_ value: UInt64) -> String { value == 0 ? "0" : hex(value) }

    public static func octal(_ value: UInt64) -> String { value == 0 ? "0" : "0" + String(value, radix: 8) }

    public static func signedDecimal(_ value: UInt64) -> String { String(Int64(bitPattern: value)) }

    /// A file descriptor argument (int): -1 stays -1.
    public static func fd(_ value: UInt64) -> String { String(Int32(truncatingIfNeeded: value)) }

    /// printflags: set names in table order joined by "|", leftover bits as hex; "0" when empty.
    public static func flags(_ value: UInt64, _ table: [(UInt64, String)]) -> String {
        var remaining = value
        var parts: [String] = []
        for (bit, name) in table where bit != 0 && value & bit == bit && remaining & bit != 0 {
            parts.append(name)
            remaining &= ~bit
        }
        if remaining != 0 { parts.append(hex(remaining)) }
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }

    /// printxval: the name for an exact value, else hex (or the fallback).
    public static func value(_ value: UInt64, _ table: [(UInt64, String)], fallback: String? = nil) -> String {
        table.first { $0.0 == value }?.1 ?? fallback ?? hex(value)
    }

    /// strace's string_quote: C escapes, octal for the rest, "..." after the closing quote
    /// when the data was cut at `maxStringLength`.
    public static func quoted(_ bytes: some Collection<UInt8>, truncated: Bool, limit: Int = maxStringLength) -> String {
        let shown = Array(bytes.prefix(limit))
        let cut = truncated || bytes.count > limit
        var out = "\""
        for (i, c) in shown.enumerated() {
            switch c {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x0c: out += "\\f"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0x0b: out += "\\v"
            case 0x20...0x7e: out.unicodeScalars.append(Unicode.Scalar(c))
            default:
                out += "\\"
                let nextIsOctalDigit = i + 1 < shown.count && (0x30...0x37).contains(shown[i + 1])
                if nextIsOctalDigit {
                    out += String(c >> 6) + String((c >> 3) & 7)
                } else if c >> 3 != 0 {
                    if c >> 6 != 0 { out += String(c >> 6) }
                    out += String((c >> 3) & 7)
                }
                out += String(c & 7)
            }
        }
        out += "\""
        if cut { out += "..." }
        return out
    }

    /// A NUL-terminated string argument read from the tracee, or its address if unreadable.
    static func path(_ address: UInt64, _ memory: TraceeMemory, limit: Int = 4096) -> String {
        guard address != 0 else { return "NULL" }
        guard let (bytes, terminated) = memory.readCString(address, limit: limit) else { return hex(address) }
        let out = quotedAll(bytes)
        return terminated ? out : out + "..."
    }

    /// Quoted without the length limit (paths).
    static func quotedAll(_ bytes: [UInt8]) -> String {
        quoted(bytes, truncated: false, limit: Int.max)
    }
}
