import Glibc

/// General-purpose registers, as PTRACE_GETREGS returns them.
public typealias Registers = user_regs_struct

/// A 64-bit general-purpose register (addressing uses these, or their 32-bit halves).
public enum GeneralRegister: Int, Sendable, CaseIterable {
    case rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8, r9, r10, r11, r12, r13, r14, r15, rip

    static let names64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]
    static let names32 = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d", "eip"]
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
