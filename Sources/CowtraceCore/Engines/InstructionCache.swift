import Glibc

/// Decoded instructions by address, kept in the table a fork family shares (`TracedProcess`,
/// `InstructionTable`): a loop's instructions, and those every child of a shell or server
/// writes with, are read from a tracee and decoded once. A process leaves the table when its
/// code may have changed (exec, mmap, munmap, mprotect, mremap) and when it exits.
final class InstructionCache {
    private let disassembler: Disassembler
    private let processes: ProcessTable

    init(disassembler: Disassembler, processes: ProcessTable) {
        self.disassembler = disassembler
        self.processes = processes
    }

    func instruction(at address: UInt64, in pid: pid_t, memory: TraceeMemory) -> DecodedInstruction? {
        let process = processes[pid]
        if let hit = process.instructions.byAddress[address] { return hit }
        guard let bytes = memory.read(address, count: 15), !bytes.isEmpty,
              let decoded = disassembler.decode(bytes, at: address) else { return nil }
        process.instructions.byAddress[address] = decoded
        return decoded
    }

    /// The process's code changed: it leaves its family's table (the others' code did not).
    func invalidate(_ pid: pid_t) { processes[pid].instructions = InstructionTable() }
}
