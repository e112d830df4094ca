/// The few EVEX stores capstone 4.0.2 cannot decode (AVX512-VBMI2 vpcompressb/vpcompressw to
/// memory), decoded by hand so their writes are attributed rather than left undecodable.
enum EvexStoreDecoder {
    static let registers64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]

    static func decode(_ bytes: [UInt8], at address: UInt64) -> DecodedInstruction? {
        var i = 0
        var addressSize32 = false
        while i < bytes.count, bytes[i] == 0x67 {
            addressSize32 = true
            i += 1
        }
        guard i + 6 <= bytes.count, bytes[i] == 0x62 else { return nil }
        let p0 = bytes[i + 1], p1 = bytes[i + 2], p2 = bytes[i + 3], opcode = bytes[i + 4], modrm = bytes[i + 5]
        // Map 0F38, prefix 66, opcode 63: vpcompressb (W0) / vpcompressw (W1); memory forms only.
        guard p0 & 0x0f == 2, p1 & 0x07 == 0x05, opcode == 0x63, modrm >> 6 != 3, p2 & 0x80 == 0 else { return nil }
        let wide = p1 & 0x80 != 0
        let element = wide ? 2 : 1
        let lengthBits = Int(p2 >> 5 & 3)
        guard lengthBits < 3 else { return nil }
        let width = 16 << lengthBits
        let source = Int(modrm >> 3 & 7) | Int(~p0 >> 7 & 1) << 3 | Int(~p0 >> 4 & 1) << 4
        let mask = Int(p2 & 7)
        let mod = modrm >> 6, rm = Int(modrm & 7)
        var next = i + 6
        var base: String?, index: String?, scale = 1
        var ripRelative = false
        if rm == 4 {
            guard next < bytes.count else { return nil }
            let sib = bytes[next]
            next += 1
            scale = 1 << Int(sib >> 6)
            let indexNumber = Int(sib >> 3 & 7) | Int(~p0 >> 6 & 1) << 3
            if indexNumber != 4 { index = registers64[indexNumber] }
            let baseNumber = Int(sib & 7) | Int(~p0 >> 5 & 1) << 3
            if !(mod == 0 && sib & 7 == 5) { base = registers64[baseNumber] }
        } else if mod == 0 && rm == 5 {
            ripRelative = true
        } else {
            base = registers64[rm | Int(~p0 >> 5 & 1) << 3]
        }
        var displacement: Int64 = 0
        if mod == 1 {
            guard next < bytes.count else { return nil }
            displacement = Int64(Int8(bitPattern: bytes[next])) * Int64(element)  // disp8*N, N = element size
            next += 1
        } else if mod == 2 || (mod == 0 && (ripRelative || (rm == 4 && base == nil))) {
            guard next + 4 <= bytes.count else { return nil }
            displacement = Int64(Int32(bitPattern: UInt32(bytes[next]) | UInt32(bytes[next + 1]) << 8 | UInt32(bytes[next + 2]) << 16 | UInt32(bytes[next + 3]) << 24))
            next += 4
        }
        if ripRelative { base = "rip" }
        let name = wide ? "vpcompressw" : "vpcompressb"
        let prefix = width == 16 ? "xmm" : width == 32 ? "ymm" : "zmm"
        // With 0x67 the address registers are their 32-bit halves.
        if addressSize32 {
            func half(_ r: String) -> String { GeneralRegister.names64.firstIndex(of: r).map { GeneralRegister.names32[$0] } ?? r }
            base = base.map(half)
            index = index.map(half)
        }
        func reg(_ r: String?) -> String { r.map { "%" + $0 } ?? "" }
        var memoryText = displacement == 0 && base != nil ? "" : (displacement < 0 ? "-" : "") + "0x" + String(displacement.magnitude, radix: 16)
        memoryText += "(" + reg(base) + (index.map { "," + reg($0) + ",\(scale)" } ?? "") + ")"
        let operand = MemoryOperand(segment: nil, base: base, index: index, scale: scale,
                                    displacement: displacement, size: width, written: true, accessesMemory: true,
                                    addressSize32: addressSize32)
        let opmask = mask == 0 ? nil : "k\(mask)"
        return DecodedInstruction(
            address: address, bytes: Array(bytes.prefix(next)), mnemonic: name,
            operands: "%\(prefix)\(source), \(memoryText)" + (opmask.map { " {%\($0)}" } ?? ""),
            kind: .plain, memoryOperands: [operand], repeated: false,
            irregular: .compress(element: element, lanes: width / element, opmask: opmask), addressSize32: addressSize32)
    }
}
