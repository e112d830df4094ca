/// Which memory operands an x86 instruction stores to.
///
/// capstone 4.0.2 (Debian 12) reports wrong access flags for common stores (movups,
/// vmovdqu, stos and cmpxchg destinations all come back as READ), so write sets are not
/// built from them. Instead: in AT&T order (capstone's detail follows the chosen syntax) the
/// last operand is the destination, except for the instructions below that only read or
/// only compute an address; one-operand forms write only for the listed read-modify-write
/// and store instructions; xchg and xadd write both operands.
public enum DestinationRules {
    /// Several operands, none written (the last one is a source too).
    static let readOnly: Set<String> = [
        "cmp", "test", "bt", "bound", "ucomiss", "ucomisd", "vucomiss", "vucomisd", "comiss", "comisd",
        "vcomiss", "vcomisd", "ptest", "vptest", "vtestps", "vtestpd", "cmpsb", "cmpsw", "cmpsd", "cmpsq",
        "scasb", "scasw", "scasd", "scasq", "lodsb", "lodsw", "lodsd", "lodsq", "outsb", "outsw", "outsd",
        "lea", "crc32", "kortestb", "kortestw", "kortestd", "kortestq", "ktestb", "ktestw", "ktestd", "ktestq",
    ]

    /// Memory operand used only as an address.
    static let addressOnly: Set<String> = ["lea", "nop", "prefetch", "prefetcht0", "prefetcht1", "prefetcht2", "prefetchnta", "prefetchw"]

    /// One operand, and it is stored to.
    static let singleOperandStores: Set<String> = [
        "inc", "dec", "neg", "not", "pop", "shl", "shr", "sal", "sar", "rol", "ror", "rcl", "rcr",
        "fst", "fstp", "fist", "fistp", "fisttp", "fbstp", "fnstcw", "fstcw", "fnstsw", "fstsw",
        "stmxcsr", "vstmxcsr", "sgdt", "sidt", "sldt", "str", "smsw", "cmpxchg8b", "cmpxchg16b",
        "fxsave", "fxsave64", "stosb", "stosw", "stosd", "stosq",
    ]

    /// Every operand is stored to.
    static let exchanges: Set<String> = ["xchg", "xadd"]

    public static func writes(instruction name: String, operandIndex: Int, operandCount: Int) -> Bool {
        if exchanges.contains(name) { return true }
        if name.hasPrefix("set") && operandCount == 1 { return true }  // sete, setne, …
        if operandCount == 1 { return singleOperandStores.contains(name) }
        if readOnly.contains(name) || addressOnly.contains(name) { return false }
        // Shifts by %cl or an immediate: the destination is still last.
        return operandIndex == operandCount - 1
    }
}
