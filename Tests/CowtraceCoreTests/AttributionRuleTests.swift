@testable import CowtraceCore
import Testing

/// The one rule both engines apply to a changed page (`CowEngine.cause`), on real machine code
/// decoded by capstone and write sets computed from registers; no process needed.
@Suite struct AttributionRuleTests {
    let disassembler = try! Disassembler()
    let page: UInt64 = 0x7000_0000

    /// `mov %rax,(%rdi)` with %rdi at `address`: its write set and touched pages.
    func store(at address: UInt64) throws -> (DecodedInstruction, WriteSet, Set<UInt64>) {
        let insn = try #require(disassembler.decode([0x48, 0x89, 0x07], at: 0x401000))
        var r = Registers()
        r.rip = 0x401000
        r.rdi = address
        return (insn, insn.writeSet(before: r, after: r), insn.touchedPages(before: r))
    }

    @Test func instructionWhoseStoreCoversThePage() throws {
        let (insn, writes, touched) = try store(at: page + 0x18)
        let cause = CowEngine.cause(of: page, instruction: insn, writes: writes, touched: touched, rseq: nil)
        guard case .instruction(let w) = cause else { Issue.record("got \(cause)"); return }
        #expect(w.ip == 0x401000 && w.address == page + 0x18 && w.size == 8)
        #expect(cause.isWrite && cause.name == "instruction")
    }

    @Test func storeCrossingIntoTheNextPageIsBlamedForBoth() throws {
        let (insn, writes, touched) = try store(at: page + 0xffc)
        #expect(writes.pages == [page, page + 0x1000])
        for p in [page, page + 0x1000] {
            guard case .instruction = CowEngine.cause(of: p, instruction: insn, writes: writes, touched: touched, rseq: nil) else {
                Issue.record("page \(p) not blamed on the store"); return
            }
        }
    }

    @Test func rseqPageGoesToTheKernelEvenUnderAStore() throws {
        // The kernel's rseq update runs on return to user mode, before the instruction.
        let (insn, writes, touched) = try store(at: page + 8)
        #expect(CowEngine.cause(of: page, instruction: insn, writes: writes, touched: touched, rseq: page) == .kernel(.rseq))
    }

    @Test func loadFromThePageLeavesTheCauseUnknown() throws {
        let load = try #require(disassembler.decode([0x48, 0x8b, 0x07], at: 0x401000))  // mov (%rdi),%rax
        var r = Registers()
        r.rdi = page + 0x40
        let cause = CowEngine.cause(of: page, instruction: load, writes: load.writeSet(before: r, after: r),
                                    touched: load.touchedPages(before: r), rseq: nil)
        guard case .unknown(let note) = cause else { Issue.record("got \(cause)"); return }
        #expect(note.contains("does not store"))
        #expect(!cause.isWrite)
    }

    @Test func storeElsewhereMeansTheKernelWrote() throws {
        let (insn, writes, touched) = try store(at: page + 0x5000)
        #expect(CowEngine.cause(of: page, instruction: insn, writes: writes, touched: touched, rseq: nil) == .kernel(nil))
        #expect(!SplitCause.kernel(nil).isWrite && SplitCause.kernel(.rseq).isWrite)
    }

    @Test func uncomputableWriteSetIsUnknownNotKernel() {
        let cause = CowEngine.cause(of: page, instruction: nil, writes: .notComputable("xsave"), touched: [], rseq: nil)
        guard case .unknown(let note) = cause else { Issue.record("got \(cause)"); return }
        #expect(note.contains("xsave"))
    }

    @Test func noInstructionAndNoWritesIsTheKernel() {
        #expect(CowEngine.cause(of: page, instruction: nil, writes: .ranges([]), touched: [], rseq: nil) == .kernel(nil))
    }

    @Test func typedCausesKeepTheirWords() {
        #expect(CloneStore.childSetTID.rawValue == "CLONE_CHILD_SETTID")
        #expect(CloneStore.parentSetTID.rawValue == "CLONE_PARENT_SETTID")
        let call = SyscallCall(name: "read", line: "read(3, \"x\", 4096) = 1")
        #expect(SplitCause.syscall(call).name == "syscall" && SplitCause.syscall(call).isWrite)
        #expect(SplitCause.clone(.childSetTID, pointer: 0x10).isWrite)
    }
}
