import CCowtrace
import Glibc

/// General-purpose registers, as PTRACE_GETREGS returns them.
public typealias Registers = user_regs_struct

/// A 64-bit general-purpose register (addressing uses these, or their 32-bit halves).
public enum GeneralRegister: Int, Sendable, CaseIterable {
    case rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15, rip

    static let names64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]
    static let names32 = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d", "eip"]
    static let names16 = ["ax", "bx", "cx", "dx", "si", "di", "bp", "sp", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w", "ip"]

    /// The register a 64-, 32- or 16-bit name ("rax", "r8d", "ax") is part of.
    static func named(_ name: String) -> GeneralRegister? {
        for names in [names64, names32, names16] {
            if let i = names.firstIndex(of: name) { return GeneralRegister(rawValue: i) }
        }
        return nil
    }
}

/// A register used in an address: which one, and whether only its low 32 bits count.
public struct RegisterReference: Sendable, Equatable {
    public let register: GeneralRegister
    public let is32Bit: Bool

    /// From capstone's name for the register ("rdi", "r8d"); nil for anything else.
    public init?(name: String) {
        if let i = GeneralRegister.names64.firstIndex(of: name) {
            register = GeneralRegister(rawValue: i)!
            is32Bit = false
        } else if let i = GeneralRegister.names32.firstIndex(of: name) {
            register = GeneralRegister(rawValue: i)!
            is32Bit = true
        } else {
            return nil
        }
    }

    public init(_ register: GeneralRegister, is32Bit: Bool = false) {
        self.register = register
        self.is32Bit = is32Bit
    }

    public func value(in regs: Registers) -> UInt64 {
        let v = regs.value(register)
        return is32Bit ? v & 0xffff_ffff : v
    }
}

extension user_regs_struct {
    public func value(_ register: GeneralRegister) -> UInt64 {
        switch register {
        case .rax: UInt64(rax)
        case .rbx: UInt64(rbx)
        case .rcx: UInt64(rcx)
        case .rdx: UInt64(rdx)
        case .rsi: UInt64(rsi)
        case .rdi: UInt64(rdi)
        case .rbp: UInt64(rbp)
        case .rsp: UInt64(rsp)
        case .r8: UInt64(r8)
        case .r9: UInt64(r9)
        case .r10: UInt64(r10)
        case .r11: UInt64(r11)
        case .r12: UInt64(r12)
        case .r13: UInt64(r13)
        case .r14: UInt64(r14)
        case .r15: UInt64(r15)
        case .rip: UInt64(rip)
        }
    }

    /// EFLAGS.DF: string instructions move downwards.
    public var directionFlag: Bool { UInt64(eflags) & 0x400 != 0 }
}

/// The opmask and vector registers of a stopped thread (PTRACE_GETREGSET NT_X86_XSTATE):
/// what masked stores, scatters and maskmov read their masks and indices from.
public struct VectorState: Sendable {
    /// k0–k7.
    public var k: [UInt64]
    /// zmm0–zmm31, 64 bytes each (xmm and ymm are their low 16 and 32 bytes).
    public var vectors: [[UInt8]]
    public var hasAVX512: Bool

    public init(k: [UInt64] = Array(repeating: 0, count: 8), vectors: [[UInt8]] = Array(repeating: Array(repeating: 0, count: 64), count: 32),
                hasAVX512: Bool = true) {
        self.k = k
        self.vectors = vectors
        self.hasAVX512 = hasAVX512
    }

    /// Reads the thread's state (it must be in a ptrace stop).
    public static func read(_ tid: pid_t) throws(CowtraceError) -> VectorState {
        var raw = cow_vector_state()
        try systemCall("ptrace(PTRACE_GETREGSET, NT_X86_XSTATE)", pid: tid) { cow_ptrace_vector_state(tid, &raw) }
        let k = withUnsafeBytes(of: raw.k) { Array($0.bindMemory(to: UInt64.self)) }
        let vectors = withUnsafeBytes(of: raw.zmm) { bytes in (0..<32).map { Array(bytes[($0 * 64)..<($0 * 64 + 64)]) } }
        return VectorState(k: k, vectors: vectors, hasAVX512: raw.has_avx512 != 0)
    }

    /// A vector register by capstone's name ("xmm3", "ymm17", "zmm0"): its bytes, as wide as the name says.
    public func register(_ name: String) -> [UInt8]? {
        guard let width = Self.width(of: name), let n = Int(name.dropFirst(3)), (0..<32).contains(n) else { return nil }
        return Array(vectors[n].prefix(width))
    }

    /// An opmask register by name ("k1").
    public func opmask(_ name: String) -> UInt64? {
        guard name.count == 2, name.first == "k", let n = Int(name.dropFirst()), (0..<8).contains(n) else { return nil }
        return k[n]
    }

    /// 16, 32 or 64 bytes for xmm, ymm, zmm.
    public static func width(of name: String) -> Int? {
        switch name.prefix(3) {
        case "xmm": 16
        case "ymm": 32
        case "zmm": 64
        default: nil
        }
    }
}
