import CCowtrace
import Glibc

/// The kernel's text symbols from /proc/kallsyms (real addresses as root), for naming the
/// kernel call chains of the record engine's kernel-mode faults. The file has some 120,000
/// lines: it is parsed as bytes and a name becomes a String only when looked up.
final class KernelSymbols {
    private let text: [UInt8]
    /// (address, start of the name, end of the name), sorted by address.
    private var symbols: [(address: UInt64, start: Int32, end: Int32)] = []

    init(path: String = "/proc/kallsyms") {
        text = (try? readWholeFile(path)) ?? []
        symbols = Self.parse(text)
    }

    /// From the text of the file, read elsewhere.
    init(text: [UInt8]) {
        self.text = text
        symbols = Self.parse(text)
    }

    /// /proc/kallsyms read on a thread of its own from now on; `finish` waits for it.
    final class Preload {
        private var read: OpaquePointer?
        init(path: String = "/proc/kallsyms") { read = cow_background_read_start(path) }

        /// The symbols (read now if the background read could not start).
        func finish() -> KernelSymbols {
            guard let pending = read else { return KernelSymbols() }
            read = nil
            var size = 0
            guard let bytes = cow_background_read_finish(pending, &size) else { return KernelSymbols() }
            defer { free(bytes) }
            return KernelSymbols(text: Array(UnsafeBufferPointer(start: bytes, count: size)))
        }

        deinit {
            guard let read else { return }
            var size = 0
            free(cow_background_read_finish(read, &size))
        }
    }

    /// "ffffffff81000000 T _stext [module]" lines: text symbols (t or T) only.
    static func parse(_ text: [UInt8]) -> [(address: UInt64, start: Int32, end: Int32)] {
        var result: [(address: UInt64, start: Int32, end: Int32)] = []
        result.reserveCapacity(text.count / 40)
        var i = 0
        let n = text.count
        while i < n {
            var address: UInt64 = 0
            var digits = 0
            while i < n, let v = hexValue(text[i]) {
                address = address << 4 | UInt64(v)
                i += 1
                digits += 1
            }
            var kind: UInt8 = 0
            if digits > 0 && i + 2 < n && text[i] == 0x20 {
                kind = text[i + 1]
                i += 3
            }
            let start = i
            while i < n && text[i] != 0x0a && text[i] != 0x20 && text[i] != 0x09 { i += 1 }
            let end = i
            while i < n && text[i] != 0x0a { i += 1 }
            i += 1
            if (kind == UInt8(ascii: "t") || kind == UInt8(ascii: "T")) && end > start {
                result.append((address, Int32(start), Int32(end)))
            }
        }
        if !result.isEmpty && !zip(result, result.dropFirst()).allSatisfy({ $0.address <= $1.address }) {
            result.sort { $0.address < $1.address }
        }
        return result
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        default: return nil
        }
    }

    /// The symbol at or below `address` ("" when none).
    func name(at address: UInt64) -> String {
        var low = 0, high = symbols.count
        while low < high {
            let mid = (low + high) / 2
            if symbols[mid].address <= address { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return "" }
        let s = symbols[low - 1]
        return String(decoding: text[Int(s.start)..<Int(s.end)], as: UTF8.self)
    }
}
