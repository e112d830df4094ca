import Glibc

/// Decoded instructions by address, kept in each process's `TracedProcess`: a loop's
/// instructions are read from the tracee and decoded once. Dropped when the process's code
/// may have changed (exec, mmap, munmap, mprotect, mremap) and when it exits.
final class InstructionCache {
    private let disassembler: Disassembler
    private let processes: ProcessTable

    init(disassembler: Disassembler, processes: ProcessTable) {
        self.disassembler = disassembler
        self.processes = processes
    }

    func instruction(at address: UInt64, in pid: pid_t, memory: TraceeMemory) -> DecodedInstruction? {
        let process = processes[pid]
        if let hit = process.instructions[address] { return hit }
        guard let bytes = memory.read(address, count: 15), !bytes.isEmpty,
              let decoded = disassembler.decode(bytes, at: address) else { return nil }
        process.instructions[address] = decoded
        return decoded
    }

    func invalidate(_ pid: pid_t) { processes[pid].instructions.removeAll() }
}
