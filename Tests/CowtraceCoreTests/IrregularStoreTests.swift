import CowtraceCore
import Glibc
import Testing

/// Write sets of masked and irregular stores from their bytes (as gas emits them), the
/// general registers and the vector state; the conformance against the CPU itself is in
/// ExactnessTests.
@Suite struct IrregularStoreTests {
    let disassembler = try! Disassembler()

    func regs(_ set: (inout Registers) -> Void) -> Registers {
        var r = Registers()
        set(&r)
        return r
    }

    func vector(k1: UInt64 = 0, _ set: (inout [[UInt8]]) -> Void = { _ in }) -> VectorState {
        var v = VectorState()
        v.k[1] = k1
        set(&v.vectors)
        return v
    }

    @Test func maskedByteStoreWritesTheSelectedLanes() throws {
        let insn = try #require(disassembler.decode([0x62, 0xe1, 0x7f, 0x49, 0x7f, 0x00], at: 0x1000))  // vmovdqu8 %zmm16,(%rax){%k1}
        #expect(insn.needsVectorState)
        let r = regs { $0.rax = 0x5000 }
        #expect(insn.writeSet(before: r, after: r, vector: vector(k1: 0x3ff)) == .ranges([WriteRange(address: 0x5000, size: 10)]))
        // Lanes apart: one range each; on the page, the size is their sum.
        let apart = insn.writeSet(before: r, after: r, vector: vector(k1: 0b1011))
        #expect(apart == .ranges([WriteRange(address: 0x5000, size: 2), WriteRange(address: 0x5003, size: 1)]))
        #expect(apart.range(on: 0x5000) == WriteRange(address: 0x5000, size: 3))
        #expect(insn.writeSet(before: r, after: r, vector: vector(k1: 0)) == .ranges([]))
        guard case .notComputable = insn.writeSet(before: r, after: r) else {
            Issue.record("without the opmask the write set is not computable")
            return
        }
    }

    @Test func compressAndDownConvert() throws {
        let r = regs { $0.rax = 0x5000 }
        let compress = try #require(disassembler.decode([0x62, 0xf2, 0x7d, 0x49, 0x8b, 0x08], at: 0x1000))  // vpcompressd %zmm1,(%rax){%k1}
        #expect(compress.writeSet(before: r, after: r, vector: vector(k1: 0xa5a5)) == .ranges([WriteRange(address: 0x5000, size: 32)]))
        let convert = try #require(disassembler.decode([0x62, 0xf2, 0x7e, 0x49, 0x35, 0x08], at: 0x1000))  // vpmovqd %zmm1,(%rax){%k1}
        #expect(convert.writeSet(before: r, after: r, vector: vector(k1: 0x3)) == .ranges([WriteRange(address: 0x5000, size: 8)]))
    }

    @Test func scatterIndexComesFromTheVSIBRegister() throws {
        // capstone 4 names %rdx as the index; the EVEX bytes say %zmm2.
        let insn = try #require(disassembler.decode([0x62, 0xf2, 0x7d, 0x49, 0xa0, 0x0c, 0x90], at: 0x1000))  // vpscatterdd %zmm1,(%rax,%zmm2,4){%k1}
        let r = regs { $0.rax = 0x5000; $0.rdx = 0x7777_0000 }
        let v = vector(k1: 0b1011) { vectors in
            for (lane, index) in [0, 3, -2, 1].enumerated() {
                withUnsafeBytes(of: Int32(index).littleEndian) { for b in 0..<4 { vectors[2][lane * 4 + b] = $0[b] } }
            }
        }
        // Lanes 0, 1 and 3 at indices 0, 3, 1 (lane 2, index -2, masked off): sorted, adjacent merged.
        #expect(insn.writeSet(before: r, after: r, vector: v) == .ranges([WriteRange(address: 0x5000, size: 8), WriteRange(address: 0x500c, size: 4)]))
        #expect(insn.touchedPages(before: r).isEmpty)
    }

    @Test func vpmaskmovUsesTheTopBitOfEachMaskLane() throws {
        let insn = try #require(disassembler.decode([0xc4, 0xe2, 0x5d, 0x8e, 0x28], at: 0x1000))  // vpmaskmovd %ymm5,%ymm4,(%rax)
        let r = regs { $0.rax = 0x5000 }
        let v = vector { $0[4][3] = 0x80; $0[4][7] = 0x80; $0[4][11] = 0xff; $0[4][12] = 0x80 }  // lanes 0-2; byte 12 is not a top byte
        #expect(insn.writeSet(before: r, after: r, vector: v) == .ranges([WriteRange(address: 0x5000, size: 12)]))
    }

    @Test func maskmovdquStoresThroughRdi() throws {
        let insn = try #require(disassembler.decode([0x66, 0x0f, 0xf7, 0xfe], at: 0x1000))  // maskmovdqu %xmm6,%xmm7
        let r = regs { $0.rdi = 0x6000 }
        let v = vector { $0[6][0] = 0x80; $0[6][1] = 0x80; $0[6][9] = 0xc0 }
        #expect(insn.writeSet(before: r, after: r, vector: v) == .ranges([WriteRange(address: 0x6000, size: 2), WriteRange(address: 0x6009, size: 1)]))
    }

    @Test func enterPushesNestingPlusOneQuadwords() throws {
        let insn = try #require(disassembler.decode([0xc8, 0x10, 0x00, 0x03], at: 0x1000))  // enter $0x10,$0x3
        let r = regs { $0.rsp = 0x7000 }
        #expect(insn.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x7000 - 32, size: 32)]))
    }

    @Test func popIntoTheStackUsesTheIncrementedPointer() throws {
        let insn = try #require(disassembler.decode([0x8f, 0x44, 0x24, 0xf0], at: 0x1000))  // pop -0x10(%rsp)
        let r = regs { $0.rsp = 0x7000 }
        #expect(insn.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x7000 + 8 - 16, size: 8)]))
    }

    @Test func bitTestWithARegisterOffsetReachesBeyondTheOperand() throws {
        let btr = try #require(disassembler.decode([0x48, 0x0f, 0xb3, 0x82, 0x00, 0x08, 0x00, 0x00], at: 0x1000))  // btr %rax,0x800(%rdx)
        let r = regs { $0.rdx = 0x5000; $0.rax = UInt64(bitPattern: -99) }
        // Bit -99 lies in the quadword at -16 (floor(-99 / 64) = -2).
        #expect(btr.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x5800 - 16, size: 8)]))
        let bts = try #require(disassembler.decode([0x66, 0x0f, 0xab, 0x42, 0x40], at: 0x1000))  // bts %ax,0x40(%rdx)
        // A 16-bit offset is the low 16 bits, signed: 0xfffb is -5, in the word at -2.
        let r16 = regs { $0.rdx = 0x5000; $0.rax = 0x1234_fffb }
        #expect(bts.writeSet(before: r16, after: r16) == .ranges([WriteRange(address: 0x5040 - 2, size: 2)]))
    }

    @Test func xsaveWritesWhatEdxEaxSelects() throws {
        let insn = try #require(disassembler.decode([0x48, 0x0f, 0xae, 0x21], at: 0x1000))  // xsave64 (%rcx)
        // SSE only: MXCSR, XMM0-15 and XSTATE_BV.
        let r = regs { $0.rcx = 0x8000; $0.rax = 2; $0.rdx = 0 }
        #expect(insn.writeSet(before: r, after: r) == .ranges([
            WriteRange(address: 0x8000 + 24, size: 8), WriteRange(address: 0x8000 + 160, size: 256), WriteRange(address: 0x8000 + 512, size: 8),
        ]))
    }

    /// capstone 4.0.2 cannot decode AVX512-VBMI2's vpcompressb/w: decoded from the EVEX bytes.
    @Test func vbmi2CompressDecodedByHand() throws {
        let b = try #require(disassembler.decode([0x62, 0xe2, 0x7d, 0x49, 0x63, 0x00], at: 0x1000))
        #expect(b.text == "vpcompressb %zmm16, (%rax) {%k1}")
        let r = regs { $0.rax = 0x5000; $0.rdx = 0x6000; $0.r9 = 3; $0.r12 = 0x7000 }
        #expect(b.writeSet(before: r, after: r, vector: vector(k1: 0x8000_0000_0000_0f0f)) == .ranges([WriteRange(address: 0x5000, size: 9)]))
        // disp8 is scaled by the element size: 0x20 * 2 = 0x40.
        let w = try #require(disassembler.decode([0x62, 0xb2, 0xfd, 0x4a, 0x63, 0x4c, 0x4a, 0x20], at: 0x1000))
        #expect(w.text == "vpcompressw %zmm1, 0x40(%rdx,%r9,2) {%k2}")
        #expect(w.length == 8)
        var v = vector()
        v.k[2] = 0b111
        #expect(w.writeSet(before: r, after: r, vector: v) == .ranges([WriteRange(address: 0x6000 + 0x40 + 6, size: 6)]))
        let y = try #require(disassembler.decode([0x62, 0xc2, 0x7d, 0x29, 0x63, 0x4c, 0x24, 0xfd], at: 0x1000))
        #expect(y.text == "vpcompressb %ymm17, -0x3(%r12) {%k1}")
        #expect(y.writeSet(before: r, after: r, vector: vector(k1: UInt64.max)) == .ranges([WriteRange(address: 0x7000 - 3, size: 32)]))
    }

    @Test func repeatCountsNeverTrap() throws {
        let stos = try #require(disassembler.decode([0xf3, 0x48, 0xab], at: 0x1000))  // rep stos %rax,%es:(%rdi)
        let before = regs { $0.rdi = 0x5000; $0.rcx = UInt64.max }
        let after = regs { $0.rcx = 0 }
        guard case .notComputable = stos.writeSet(before: before, after: after) else {
            Issue.record("an impossible repeat count is not computable")
            return
        }
    }
}
