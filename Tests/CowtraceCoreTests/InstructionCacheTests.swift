@testable import CowtraceCore
import Glibc
import Testing

/// Decoded instructions kept per fork family (`InstructionTable`); no process needed: the pids
/// do not exist, so an answer that is not in the tables cannot be read either.
@Suite struct InstructionCacheTests {
    let disassembler = try! Disassembler()

    /// A child joins its parent's table: what one member decodes, even after the forks, the
    /// others find without reading their memory; a process whose code changes leaves for a
    /// table of its own, and the others keep theirs.
    @Test func aForkFamilySharesDecodedInstructionsUntilItsCodeChanges() throws {
        let processes = ProcessTable()
        let cache = InstructionCache(disassembler: disassembler, processes: processes)
        let parent: pid_t = 2_000_000_001, child: pid_t = 2_000_000_002, sibling: pid_t = 2_000_000_003
        defer { [parent, child, sibling].forEach(processes.close) }
        processes.open(parent)
        let store = try #require(disassembler.decode([0x48, 0x89, 0x07], at: 0x401000))  // mov %rax,(%rdi)
        processes[parent].instructions.byAddress[0x401000] = store
        processes.inheritMappings(child: child, from: parent)
        processes.inheritMappings(child: sibling, from: parent)
        #expect(cache.instruction(at: 0x401000, in: child, memory: TraceeMemory(pid: child)) === store)

        let childOnly = try #require(disassembler.decode([0xc6, 0x00, 0x02], at: 0x402000))  // movb $2,(%rax)
        processes[child].instructions.byAddress[0x402000] = childOnly
        #expect(cache.instruction(at: 0x402000, in: sibling, memory: TraceeMemory(pid: sibling)) === childOnly)
        #expect(cache.instruction(at: 0x402000, in: parent, memory: TraceeMemory(pid: parent)) === childOnly)

        cache.invalidate(child)
        #expect(cache.instruction(at: 0x401000, in: child, memory: TraceeMemory(pid: child)) == nil)
        #expect(cache.instruction(at: 0x401000, in: sibling, memory: TraceeMemory(pid: sibling)) === store)
    }
}
