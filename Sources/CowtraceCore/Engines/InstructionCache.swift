import Glibc

/// Decoded instructions by address, per process: a loop's instructions are read from the
/// tracee and decoded once. Dropped when the process's code may have changed (exec, mmap,
/// munmap, mprotect, mremap).
final class InstructionCache {
    private let disassembler: Disassembler
    private var byProcess: [pid_t: [UInt64: DecodedInstruction]] = [:]

    init(disassembler: Disassembler) { self.disassembler = disassembler }

    func instruction(at address: UInt64, in pid: pid_t, memory: TraceeMemory) -> DecodedInstruction? {
        if let hit = byProcess[pid]?[address] { return hit }
        guard let bytes = memory.read(address, count: 15), !bytes.isEmpty,
              let decoded = disassembler.decode(bytes, at: address) else { return nil }
        byProcess[pid, default: [:]][address] = decoded
        return decoded
    }

    func invalidate(_ pid: pid_t) { byProcess[pid] = nil }
}
