/// A JSON value with ordered object keys, so events print their fields in the spec's order.
public indirect enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// "0x…" lowercase hex, encoded without building a String.
    case hexNumber(UInt64)
    /// Already encoded JSON (a cached fragment, such as a backtrace seen before).
    case encodedJSON([UInt8])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.encoded() == b.encoded() }

    public static func hex(_ value: UInt64) -> JSONValue { .hexNumber(value) }
    public static func hex(_ value: UInt64?) -> JSONValue { value.map { .hex($0) } ?? .null }
    public static func int(_ value: Int) -> JSONValue { .int(Int64(value)) }
    public static func int32(_ value: Int32) -> JSONValue { .int(Int64(value)) }
    public static func string(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }

    public func encoded() -> String {
        var out: [UInt8] = []
        encode(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the UTF-8 encoding (bytes, not String appends: this runs once per event).
    public func encode(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): Self.decimal(i, into: &out)
        case .string(let s): Self.quote(s, into: &out)
        case .hexNumber(let v):
            out.append(UInt8(ascii: "\""))
            HexDigits.append(v, into: &out)
            out.append(UInt8(ascii: "\""))
        case .encodedJSON(let bytes): out.append(contentsOf: bytes)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.encode(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.quote(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.encode(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func decimal(_ value: Int64, into out: inout [UInt8]) {
        if value == 0 { out.append(UInt8(ascii: "0")); return }
        var v = value.magnitude
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            while v > 0 {
                buf[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
                n += 1
            }
        }
        if value < 0 { out.append(UInt8(ascii: "-")) }
        withUnsafeBytes(of: &digits) { buf in for i in stride(from: n - 1, through: 0, by: -1) { out.append(buf[i]) } }
    }

    static func quote(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escaping: one append of the whole buffer.
        let plain = s.utf8.withContiguousStorageIfAvailable { buffer -> Bool in
            guard !buffer.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
            out.append(contentsOf: buffer)
            return true
        }
        if plain == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0a: out.append(contentsOf: "\\n".utf8)
            case 0x0d: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 15)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// "0x" and lowercase hex digits, written straight into bytes (addresses are formatted for
/// every split; String(radix:) allocates several times).
enum HexDigits {
    /// The digits are laid out in a word on the stack and appended in one copy (a line per
    /// split carries three of these).
    static func append(_ value: UInt64, into out: inout [UInt8]) {
        let count = value == 0 ? 1 : (67 - value.leadingZeroBitCount) / 4
        var digits: (UInt64, UInt64, UInt16) = (0, 0, 0)  // "0x" and at most 16 digits
        withUnsafeMutableBytes(of: &digits) { raw in
            raw[0] = UInt8(ascii: "0")
            raw[1] = UInt8(ascii: "x")
            var v = value
            for i in stride(from: count + 1, through: 2, by: -1) {
                let digit = UInt8(v & 15)
                raw[i] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                v >>= 4
            }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[..<(count + 2)]))
        }
    }

    static func string(_ value: UInt64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(18)
        append(value, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
