/// A memory operand as capstone decodes it.
public struct MemoryOperand: Sendable, Equatable {
    public let segment: String?
    public let base: String?
    public let index: String?
    public let scale: Int
    public let displacement: Int64
    public let size: Int
    /// The instruction stores to this operand (see DestinationRules).
    public let written: Bool
    /// false for lea and nop, which compute an address without touching memory.
    public let accessesMemory: Bool
    public let addressSize32: Bool

    /// The effective address, from the registers as they were before the instruction ran.
    /// nil when a register is not one we can read (a vector index: scatter/gather).
    public func address(before regs: Registers, instructionEnd: UInt64, fsBase: UInt64, gsBase: UInt64) -> UInt64? {
        var address = UInt64(bitPattern: displacement)
        if let base {
            if base == "rip" {
                address &+= instructionEnd
            } else {
                guard let r = RegisterReference(name: base) else { return nil }
                address &+= r.value(in: regs)
            }
        }
        if let index {
            guard let r = RegisterReference(name: index) else { return nil }
            address &+= r.value(in: regs) &* UInt64(max(scale, 1))
        }
        if addressSize32 { address &= 0xffff_ffff }
        switch segment {
        case "fs": address &+= fsBase
        case "gs": address &+= gsBase
        default: break
        }
        return address
    }
}

/// One decoded instruction and what it writes (a class: cached and handed around per step).
public final class DecodedInstruction: Sendable {
    public enum Kind: Sendable, Equatable {
        case plain
        /// call, push, pushf: also stores below the stack pointer.
        case push
        case syscall
        /// xsave family, scatters, enter…: the write set cannot be computed from operands.
        case notComputable
    }

    public let address: UInt64
    public let bytes: [UInt8]
    public let mnemonic: String
    public let operands: String
    public let kind: Kind
    public let memoryOperands: [MemoryOperand]
    /// A rep prefix (string instructions repeat rcx times).
    public let repeated: Bool
    /// A store whose bytes follow rules of their own (masks, scatters, xsave, enter…).
    public let irregular: IrregularStore?
    /// The 0x67 prefix: addresses are 32 bits wide.
    public let addressSize32: Bool

    public init(address: UInt64, bytes: [UInt8], mnemonic: String, operands: String, kind: Kind,
                memoryOperands: [MemoryOperand], repeated: Bool, irregular: IrregularStore? = nil, addressSize32: Bool = false) {
        self.address = address
        self.bytes = bytes
        self.mnemonic = mnemonic
        self.operands = operands
        self.kind = kind
        self.memoryOperands = memoryOperands
        self.repeated = repeated
        self.irregular = irregular
        self.addressSize32 = addressSize32
    }

    /// The write set needs the opmask or vector registers (read them before the instruction runs).
    public var needsVectorState: Bool { irregular?.needsVectorState ?? false }

    public var length: Int { bytes.count }
    public var text: String { operands.isEmpty ? mnemonic : mnemonic + " " + operands }
    public var isSyscall: Bool { kind == .syscall }
    public var writesMemory: Bool {
        kind == .push || kind == .notComputable || irregular != nil || memoryOperands.contains { $0.written }
    }

    /// Everything this instruction stored while stepping from `before` to `after`.
    /// `vector`: the opmask and vector registers before it ran (needed where `needsVectorState`).
    public func writeSet(before: Registers, after: Registers, vector: VectorState? = nil) -> WriteSet {
        if kind == .notComputable { return .notComputable(mnemonic) }
        if let irregular { return irregular.writeSet(self, before: before, vector: vector) }
        var ranges: [WriteRange] = []
        let end = address &+ UInt64(length)
        let fs = UInt64(before.fs_base), gs = UInt64(before.gs_base)
        for operand in memoryOperands where operand.written {
            guard let start = operand.address(before: before, instructionEnd: end, fsBase: fs, gsBase: gs) else {
                return .notComputable(mnemonic)
            }
            var count: UInt64 = 1
            let isString = operand.base == "rdi" || operand.base == "edi"
            if repeated && isString {
                // A single step runs one iteration (or more, on some CPUs): use how far rcx moved.
                count = (UInt64(before.rcx) &- UInt64(after.rcx)) & (addressSize32 ? 0xffff_ffff : UInt64.max)
                if count == 0 { continue }
            }
            // Tracee values: never trap on them.
            let (size, overflow) = UInt64(operand.size).multipliedReportingOverflow(by: count)
            guard !overflow, size <= UInt64(Int32.max) else { return .notComputable("\(mnemonic): repeat count not computable") }
            if before.directionFlag && isString && count > 1 {
                ranges.append(WriteRange(address: start &- (size - UInt64(operand.size)), size: Int(size)))
            } else {
                ranges.append(WriteRange(address: start, size: Int(size)))
            }
        }
        if kind == .push {
            let moved = UInt64(before.rsp) &- UInt64(after.rsp)
            let size: UInt64 = (moved > 0 && moved <= 16) ? moved : 8
            ranges.append(WriteRange(address: UInt64(before.rsp) &- size, size: Int(size)))
        }
        return .ranges(ranges)
    }

    /// int3, int, into, ud…: instructions whose own SIGTRAP a step could be confused with.
    public var canRaiseTrap: Bool { mnemonic.hasPrefix("int") || bytes.first == 0xcc || bytes.first == 0xcd || bytes.first == 0xf1 }

    /// Calls `body` with every page a memory operand or an implicit push touches (before
    /// the step), without allocating; pages may repeat.
    public func forEachAccessedPage(before regs: Registers, _ body: (UInt64) -> Void) {
        let end = address &+ UInt64(length)
        for operand in memoryOperands where operand.accessesMemory && irregular?.operandAddressesValid != false {
            if let a = operand.address(before: regs, instructionEnd: end, fsBase: UInt64(regs.fs_base), gsBase: UInt64(regs.gs_base)) {
                body(a & ~4095)
                body((a &+ UInt64(max(operand.size, 1)) &- 1) & ~4095)
            }
        }
        if kind == .push {
            let rsp = UInt64(regs.rsp)
            body((rsp &- 16) & ~4095)
            body((rsp &- 1) & ~4095)
        }
    }

    /// Addresses of every memory operand, written or not: a page that changed under an
    /// operand capstone says is only read must not be blamed on the kernel either.
    public func touchedPages(before: Registers) -> Set<UInt64> {
        let end = address &+ UInt64(length)
        var pages: Set<UInt64> = []
        for operand in memoryOperands where operand.accessesMemory && irregular?.operandAddressesValid != false {
            if let a = operand.address(before: before, instructionEnd: end, fsBase: UInt64(before.fs_base), gsBase: UInt64(before.gs_base)) {
                for p in WriteRange(address: a, size: max(operand.size, 1)).pages { pages.insert(p) }
            }
        }
        return pages
    }
}

public struct WriteRange: Sendable, Equatable {
    public let address: UInt64
    public let size: Int

    public init(address: UInt64, size: Int) {
        self.address = address
        self.size = size
    }

    /// The pages this range touches.
    public var pages: [UInt64] {
        guard size > 0 else { return [] }
        let first = address & ~4095
        let last = (address &+ UInt64(size) &- 1) & ~4095
        return Array(stride(from: first, through: last, by: 4096))
    }
}

public enum WriteSet: Sendable, Equatable {
    case ranges([WriteRange])
    case notComputable(String)

    public var pages: Set<UInt64> {
        guard case .ranges(let ranges) = self else { return [] }
        return Set(ranges.flatMap(\.pages))
    }

    /// What the instruction wrote on `page`: from the first range touching it, as many bytes
    /// as all ranges touching it hold (a masked store's lanes need not be adjacent).
    public func range(on page: UInt64) -> WriteRange? {
        guard case .ranges(let ranges) = self else { return nil }
        let touching = ranges.filter { $0.pages.contains(page) }
        guard let first = touching.first else { return nil }
        return WriteRange(address: first.address, size: touching.reduce(0) { $0 + $1.size })
    }

    /// The ranges touching `page`.
    public func ranges(on page: UInt64) -> [WriteRange] {
        guard case .ranges(let ranges) = self else { return [] }
        return ranges.filter { $0.pages.contains(page) }
    }
}
