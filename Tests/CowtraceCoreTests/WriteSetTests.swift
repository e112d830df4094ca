import CowtraceCore
import Glibc
import Testing

/// Write sets from real machine code (bytes as gcc/objdump emit them) and registers.
@Suite struct WriteSetTests {
    let disassembler = try! Disassembler()

    func regs(_ set: (inout Registers) -> Void) -> Registers {
        var r = Registers()
        set(&r)
        return r
    }

    @Test func ripRelativeStore() throws {
        // 401167: 48 c7 05 ce 4e 00 00 22 22 00 00    movq $0x2222,0x4ece(%rip)
        let insn = try #require(disassembler.decode([0x48, 0xc7, 0x05, 0xce, 0x4e, 0x00, 0x00, 0x22, 0x22, 0x00, 0x00], at: 0x401167))
        #expect(insn.text == "movq $0x2222, 0x4ece(%rip)")
        let r = regs { $0.rip = 0x401167 }
        #expect(insn.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x401172 + 0x4ece, size: 8)]))
    }

    @Test func registerIndirectStoreAndLoad() throws {
        let store = try #require(disassembler.decode([0x48, 0x89, 0x07], at: 0x1000))  // mov %rax,(%rdi)
        let r = regs { $0.rdi = 0x7000_0010 }
        #expect(store.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x7000_0010, size: 8)]))
        let load = try #require(disassembler.decode([0x48, 0x8b, 0x07], at: 0x1000))  // mov (%rdi),%rax
        #expect(load.writeSet(before: r, after: r) == .ranges([]))
        #expect(load.touchedPages(before: r) == [0x7000_0000])
        #expect(!load.writesMemory)
    }

    @Test func callAndPushWriteBelowTheStackPointer() throws {
        let call = try #require(disassembler.decode([0xe8, 0x00, 0x00, 0x00, 0x00], at: 0x1000))
        let before = regs { $0.rsp = 0x7ffe_0000 }
        let after = regs { $0.rsp = 0x7ffe_0000 - 8 }
        #expect(call.writeSet(before: before, after: after) == .ranges([WriteRange(address: 0x7ffe_0000 - 8, size: 8)]))
        let push = try #require(disassembler.decode([0x55], at: 0x1000))  // push %rbp
        #expect(push.writeSet(before: before, after: after).pages == [0x7ffd_f000])
    }

    @Test func repStosUsesRcxProgress() throws {
        let stos = try #require(disassembler.decode([0xf3, 0x48, 0xab], at: 0x1000))  // rep stos %rax,%es:(%rdi)
        let before = regs { $0.rdi = 0x5000; $0.rcx = 10 }
        let after = regs { $0.rdi = 0x5008; $0.rcx = 9 }
        #expect(stos.writeSet(before: before, after: after) == .ranges([WriteRange(address: 0x5000, size: 8)]))
        let downward = regs { $0.rdi = 0x5000; $0.rcx = 10; $0.eflags = 0x400 }
        let afterThree = regs { $0.rcx = 7 }
        #expect(stos.writeSet(before: downward, after: afterThree) == .ranges([WriteRange(address: 0x5000 - 16, size: 24)]))
    }

    @Test func fsSegmentAddsTheBase() throws {
        // mov %rax,%fs:0x10
        let insn = try #require(disassembler.decode([0x64, 0x48, 0x89, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00], at: 0x1000))
        let r = regs { $0.fs_base = 0x7f00_0000_0000 }
        #expect(insn.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x7f00_0000_0010, size: 8)]))
    }

    @Test func syscallAndXsaveAreNamedNotGuessed() throws {
        #expect(disassembler.decode([0x0f, 0x05], at: 0x1000)?.isSyscall == true)
        // xsaves (%rax): supervisor state, privileged; what it writes is not ours to know.
        let xsaves = try #require(disassembler.decode([0x0f, 0xc7, 0x28], at: 0x1000))
        let r = Registers()
        guard case .notComputable = xsaves.writeSet(before: r, after: r) else {
            Issue.record("xsaves must not get a computed write set")
            return
        }
    }

    /// capstone 4 calls these destinations READ; the write set must still have them.
    @Test func storesCapstoneMislabels() throws {
        let r = regs { $0.rdi = 0x9000; $0.rsi = 0x3000 }
        let stores: [([UInt8], Int)] = [
            ([0x0f, 0x11, 0x07], 16),                 // movups %xmm0,(%rdi)
            ([0xc5, 0xfe, 0x7f, 0x07], 32),           // vmovdqu %ymm0,(%rdi)
            ([0xf0, 0x48, 0x0f, 0xb1, 0x17], 8),      // lock cmpxchg %rdx,(%rdi)
            ([0x48, 0xab], 8),                        // stos %rax,%es:(%rdi)
            ([0xa4], 1),                              // movsb (%rsi),%es:(%rdi)
            ([0xf0, 0x48, 0x83, 0x0f, 0x00], 8),      // lock orq $0,(%rdi)
            ([0x0f, 0x94, 0x07], 1),                  // sete (%rdi)
            ([0x48, 0x87, 0x07], 8),                  // xchg %rax,(%rdi)
        ]
        for (bytes, size) in stores {
            let insn = try #require(disassembler.decode(bytes, at: 0x1000))
            #expect(insn.writeSet(before: r, after: r) == .ranges([WriteRange(address: 0x9000, size: size)]), "\(insn.text)")
        }
        let reads: [[UInt8]] = [
            [0x48, 0x83, 0x3f, 0x01],   // cmpq $1,(%rdi)
            [0x48, 0x85, 0x07],         // test %rax,(%rdi)
            [0xff, 0x37],               // push (%rdi) -- reads (%rdi); its store is the stack slot
            [0x48, 0x8d, 0x07],         // lea (%rdi),%rax
            [0x0f, 0x18, 0x0f],         // prefetcht0 (%rdi)
            [0xf3, 0xa6],               // repz cmpsb
        ]
        for bytes in reads {
            let insn = try #require(disassembler.decode(bytes, at: 0x1000))
            #expect(!insn.writeSet(before: r, after: r).pages.contains(0x9000), "\(insn.text)")
        }
    }

    @Test func rangesCoverEveryPageTheyTouch() {
        #expect(WriteRange(address: 0x1ffc, size: 8).pages == [0x1000, 0x2000])
        #expect(WriteRange(address: 0x2000, size: 1).pages == [0x2000])
    }
}
