/// One home for the ways cowtrace writes numbers and symbols.

/// "0x1f" (lowercase, no padding), as strace and the JSON log write addresses.
func hex(_ value: UInt64) -> String { HexDigits.string(value) }

/// "main+0x24", or just "main" at offset 0.
func symbolWithOffset(_ symbol: String, _ offset: UInt64?) -> String {
    guard let offset, offset != 0 else { return symbol }
    return symbol + "+0x" + String(offset, radix: 16)
}

/// Instruction bytes as objdump shows them: "48 89 07".
func bytesText(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ")
}

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

extension Array where Element == UInt8 {
    /// A literal's bytes in one copy (appending `"…".utf8` goes through the generic path).
    mutating func append(literal: StaticString) {
        literal.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// A string's bytes in one copy where they are contiguous (native strings are).
    mutating func append(utf8 text: String) {
        if text.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) == nil { append(contentsOf: text.utf8) }
    }
}
