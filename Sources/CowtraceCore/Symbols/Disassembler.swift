import CCapstone

/// x86-64 disassembly with capstone (detail mode on, for operands and their access).
public final class Disassembler {
    public enum Syntax: Sendable { case att, intel }

    /// Always AT&T: operand order decides which operand is the destination.
    private var handle: csh = 0
    /// Intel text for display when asked for (--syntax intel).
    private var intelHandle: csh = 0

    public init(syntax: Syntax = .att) throws {
        guard cs_open(CS_ARCH_X86, CS_MODE_64, &handle) == CS_ERR_OK else {
            throw CowtraceError("capstone: cs_open failed")
        }
        cs_option(handle, CS_OPT_DETAIL, Int(CS_OPT_ON.rawValue))
        cs_option(handle, CS_OPT_SYNTAX, Int(CS_OPT_SYNTAX_ATT.rawValue))
        if syntax == .intel {
            guard cs_open(CS_ARCH_X86, CS_MODE_64, &intelHandle) == CS_ERR_OK else {
                throw CowtraceError("capstone: cs_open failed")
            }
            cs_option(intelHandle, CS_OPT_SYNTAX, Int(CS_OPT_SYNTAX_INTEL.rawValue))
        }
    }

    deinit {
        cs_close(&handle)
        if intelHandle != 0 { cs_close(&intelHandle) }
    }

    /// mnemonic and operands in the display syntax.
    private func intelText(_ bytes: [UInt8], at address: UInt64) -> (String, String)? {
        var insn: UnsafeMutablePointer<cs_insn>?
        let count = bytes.withUnsafeBufferPointer { cs_disasm(intelHandle, $0.baseAddress, $0.count, address, 1, &insn) }
        guard count == 1, let insn else { return nil }
        defer { cs_free(insn, count) }
        return (Self.string(insn.pointee.mnemonic), Self.string(insn.pointee.op_str))
    }

    private static func string<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
    }

    /// Decodes the first instruction in `bytes`, located at `address`.
    public func decode(_ bytes: [UInt8], at address: UInt64) -> DecodedInstruction? {
        var insn: UnsafeMutablePointer<cs_insn>?
        let count = bytes.withUnsafeBufferPointer { cs_disasm(handle, $0.baseAddress, $0.count, address, 1, &insn) }
        guard count == 1, let insn else { return EvexStoreDecoder.decode(bytes, at: address) }
        defer { cs_free(insn, count) }
        let i = insn.pointee
        var mnemonic = Self.string(i.mnemonic)
        var operands = Self.string(i.op_str)
        let attMnemonic = mnemonic
        let length = Int(i.size)
        let x86 = i.detail.pointee.x86
        let id = i.id
        let name = cs_insn_name(handle, id).map { String(cString: $0) } ?? attMnemonic
        if intelHandle != 0, let (m, o) = intelText(bytes, at: address) { (mnemonic, operands) = (m, o) }
        var memory: [MemoryOperand] = []
        var operandList: [InstructionOperand] = []
        withUnsafeBytes(of: x86.operands) { raw in
            let ops = raw.bindMemory(to: cs_x86_op.self)
            var count = Int(x86.op_count)
            // An AVX-512 write mask ({%k1}) comes last in capstone's list: the destination is
            // the operand before it.
            if count > 1, ops[count - 1].type == X86_OP_REG, let last = registerName(ops[count - 1].reg),
               last.count == 2, last.hasPrefix("k") {
                count -= 1
            }
            for k in 0..<count {
                switch ops[k].type {
                case X86_OP_REG: operandList.append(.register(registerName(ops[k].reg) ?? "?", size: Int(ops[k].size)))
                case X86_OP_IMM: operandList.append(.immediate(ops[k].imm))
                case X86_OP_MEM: operandList.append(.memory(memory.count))
                default: operandList.append(.other)
                }
                guard ops[k].type == X86_OP_MEM else { continue }
                let m = ops[k].mem
                let written = DestinationRules.writes(instruction: name, operandIndex: k, operandCount: count)
                memory.append(MemoryOperand(
                    segment: registerName(m.segment),
                    base: registerName(m.base),
                    index: registerName(m.index),
                    scale: Int(m.scale),
                    displacement: m.disp,
                    size: Int(ops[k].size),
                    written: written,
                    accessesMemory: !DestinationRules.addressOnly.contains(name),
                    addressSize32: x86.addr_size == 4))
            }
        }
        let prefixes = [x86.prefix.0, x86.prefix.1, x86.prefix.2, x86.prefix.3]
        let irregular = IrregularStore(name: name, attOperands: Self.string(i.op_str), operands: operandList, memory: memory,
                                       bytes: Array(bytes.prefix(length)), operandSize16: prefixes.contains(0x66))
        return DecodedInstruction(
            address: address, bytes: Array(bytes.prefix(length)), mnemonic: mnemonic, operands: operands,
            kind: irregular != nil ? .plain : Self.kind(id), memoryOperands: memory,
            repeated: x86.prefix.0 == UInt8(X86_PREFIX_REP.rawValue), irregular: irregular, addressSize32: x86.addr_size == 4)
    }

    private func registerName(_ reg: UInt32) -> String? {
        guard reg != 0, let name = cs_reg_name(handle, reg) else { return nil }
        return String(cString: name)
    }

    private func registerName(_ reg: x86_reg) -> String? { registerName(reg.rawValue) }

    /// What an instruction writes beyond its explicit operands.
    static func kind(_ id: UInt32) -> DecodedInstruction.Kind {
        func is_(_ ins: x86_insn) -> Bool { id == ins.rawValue }
        if is_(X86_INS_SYSCALL) { return .syscall }
        if is_(X86_INS_CALL) || is_(X86_INS_PUSH) || is_(X86_INS_PUSHF) || is_(X86_INS_PUSHFQ) { return .push }
        let notComputable: [x86_insn] = [
            X86_INS_XSAVE, X86_INS_XSAVE64, X86_INS_XSAVEC, X86_INS_XSAVEC64, X86_INS_XSAVEOPT, X86_INS_XSAVEOPT64,
            X86_INS_XSAVES, X86_INS_XSAVES64, X86_INS_FNSAVE, X86_INS_FNSTENV, X86_INS_ENTER,
            X86_INS_VPSCATTERDD, X86_INS_VPSCATTERDQ, X86_INS_VPSCATTERQD, X86_INS_VPSCATTERQQ,
            X86_INS_VSCATTERDPD, X86_INS_VSCATTERDPS, X86_INS_VSCATTERQPD, X86_INS_VSCATTERQPS,
            X86_INS_MASKMOVDQU, X86_INS_MASKMOVQ, X86_INS_VMASKMOVDQU, X86_INS_INT, X86_INS_INT3, X86_INS_SYSENTER,
        ]
        if notComputable.contains(where: { $0.rawValue == id }) { return .notComputable }
        return .plain
    }
}
