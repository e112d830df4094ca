/// The x86-64 system call table (names and argument counts), generated from Tables/syscalls.in.
public enum SyscallTable {
    public struct Entry: Sendable {
        public let number: Int
        public let name: String
        public let argumentCount: Int
    }

    public static func entry(_ number: UInt64) -> Entry? {
        number < UInt64(entries.count) ? entries[Int(number)] : nil
    }

    /// strace's name for an unknown number.
    public static func name(_ number: UInt64) -> String {
        entry(number)?.name ?? "syscall_0x\(String(number, radix: 16))"
    }

    public static func number(of name: String) -> Int? {
        entries.first { $0?.name == name }??.number
    }
}
