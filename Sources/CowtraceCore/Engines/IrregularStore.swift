import CCowtrace

/// An operand as capstone lists it, in AT&T order.
public enum InstructionOperand: Sendable, Equatable {
    case register(String, size: Int)
    case immediate(Int64)
    /// Index into the instruction's memory operands.
    case memory(Int)
    case other
}

/// Stores whose bytes are not simply "the destination operand": masked and compressing
/// vector stores, scatters, maskmov, the xsave family, enter, pop into a stack-relative slot,
/// bit tests with a register bit offset. Their write set depends on registers the general
/// set does not hold (opmasks, vector lanes, EDX:EAX as a feature mask) or on rules of the
/// instruction, and is the bytes the CPU actually writes, not the operand's width.
public enum IrregularStore: Sendable, Equatable {
    /// AVX-512 store under a `{k}` mask: lane i (of `lanes`) is written iff mask bit i is set.
    case masked(element: Int, lanes: Int, opmask: String)
    /// vpcompress/vcompress: the selected lanes, packed from the start.
    case compress(element: Int, lanes: Int, opmask: String?)
    /// vpmov* down-conversions to memory: `element`-byte results, one per source lane.
    case downConvert(element: Int, lanes: Int, opmask: String?)
    /// Scatters: each selected lane to base + index[lane] * scale + displacement.
    case scatter(element: Int, indexElement: Int, lanes: Int, index: String, opmask: String)
    /// vpmaskmov/vmaskmov stores: lane i written iff the top bit of the mask's lane i is set.
    case vectorMask(element: Int, lanes: Int, mask: String)
    /// maskmovdqu: byte i of (%rdi) written iff the top bit of the mask's byte i is set.
    case byteMask(mask: String)
    /// The xsave family: which components EDX:EAX (and XCR0) select.
    case xsave(XsaveForm)
    /// enter $size, $nesting: pushes nesting+1 quadwords below the stack pointer.
    case enter(nesting: Int)
    /// pop into a memory operand based on %rsp: its address uses the incremented %rsp.
    case popStackRelative(size: Int)
    /// bts/btr/btc with a register bit offset: the word holding the bit, which may lie far
    /// from the operand's address.
    case bitTest(offsetRegister: String, size: Int)

    public enum XsaveForm: Sendable, Equatable {
        case fxsave, xsave, xsaveopt, xsavec, xsaves
    }

    static let maskedElements: [String: Int] = [
        "vmovdqu8": 1, "vmovdqu16": 2, "vmovdqu32": 4, "vmovdqu64": 8, "vmovdqa32": 4, "vmovdqa64": 8,
        "vmovups": 4, "vmovaps": 4, "vmovupd": 8, "vmovapd": 8, "vmovss": 4, "vmovsd": 8,
    ]
    static let compressElements: [String: Int] = [
        "vpcompressb": 1, "vpcompressw": 2, "vpcompressd": 4, "vpcompressq": 8, "vcompressps": 4, "vcompresspd": 8,
    ]
    static let vectorMaskElements: [String: Int] = ["vpmaskmovd": 4, "vpmaskmovq": 8, "vmaskmovps": 4, "vmaskmovpd": 8]
    static let xsaveForms: [String: XsaveForm] = [
        "fxsave": .fxsave, "fxsave64": .fxsave, "xsave": .xsave, "xsave64": .xsave, "xsaveopt": .xsaveopt,
        "xsaveopt64": .xsaveopt, "xsavec": .xsavec, "xsavec64": .xsavec, "xsaves": .xsaves, "xsaves64": .xsaves,
    ]

    /// The `{%kN}` write mask in capstone's AT&T operand text.
    static func opmask(inATT text: String) -> String? {
        let chars = Array(text.utf8)
        guard chars.count >= 4 else { return nil }
        for i in 0...(chars.count - 4) where chars[i] == UInt8(ascii: "{") && chars[i + 1] == UInt8(ascii: "%") && chars[i + 2] == UInt8(ascii: "k") {
            let digit = chars[i + 3]
            guard digit >= UInt8(ascii: "1") && digit <= UInt8(ascii: "7") else { return nil }
            return "k" + String(UnicodeScalar(digit))
        }
        return nil
    }

    static func elementSize(_ letter: Character) -> Int? {
        switch letter {
        case "b": 1
        case "w": 2
        case "d": 4
        case "q": 8
        default: nil
        }
    }

    /// Recognises the forms above; nil for every ordinary instruction.
    init?(name: String, attOperands: String, operands: [InstructionOperand], memory: [MemoryOperand], bytes: [UInt8], operandSize16: Bool) {
        let storesToMemory: Bool = { if case .memory = operands.last { return true } else { return false } }()
        let firstRegister: String? = operands.lazy.compactMap { if case .register(let r, _) = $0 { return r } else { return nil } }.first
        let registers = operands.compactMap { op -> String? in if case .register(let r, _) = op { return r } else { return nil } }
        let mask = Self.opmask(inATT: attOperands)
        if let element = Self.maskedElements[name], storesToMemory, let mask {
            let width = name == "vmovss" || name == "vmovsd" ? element : firstRegister.flatMap(VectorState.width) ?? 0
            guard width >= element else { return nil }
            self = .masked(element: element, lanes: width / element, opmask: mask)
        } else if let element = Self.compressElements[name], storesToMemory {
            guard let width = firstRegister.flatMap(VectorState.width) else { return nil }
            self = .compress(element: element, lanes: width / element, opmask: mask)
        } else if name.hasPrefix("vpmov"), storesToMemory, name.count >= 7,
                  let source = Self.elementSize(name[name.index(name.endIndex, offsetBy: -2)]),
                  let element = Self.elementSize(name.last!), source > element,
                  let width = firstRegister.flatMap(VectorState.width) {
            self = .downConvert(element: element, lanes: width / source, opmask: mask)
        } else if name.hasPrefix("vpscatter") || name.hasPrefix("vscatter") {
            // vpscatterdd, vpscatterqd, vscatterdps, vscatterqpd…: index width letter, then data.
            let tail = name.hasPrefix("vpscatter") ? name.dropFirst(9) : name.dropFirst(8)
            guard let indexLetter = tail.first, let indexElement = Self.elementSize(indexLetter), let mask,
                  let data = firstRegister, let width = VectorState.width(of: data),
                  case .memory = operands.last else { return nil }
            let rest = tail.dropFirst()
            let element = rest == "ps" ? 4 : rest == "pd" ? 8 : rest.count == 1 ? Self.elementSize(rest.first!) : nil
            guard let element, let n = Self.vsibIndex(bytes) else { return nil }
            let lanes = width / element
            let prefix = lanes * indexElement == 16 ? "xmm" : lanes * indexElement == 32 ? "ymm" : "zmm"
            self = .scatter(element: element, indexElement: indexElement, lanes: lanes, index: prefix + String(n), opmask: mask)
        } else if let element = Self.vectorMaskElements[name], storesToMemory, registers.count == 2,
                  let width = VectorState.width(of: registers[1]) {
            self = .vectorMask(element: element, lanes: width / element, mask: registers[1])
        } else if name == "maskmovdqu" || name == "vmaskmovdqu", let mask = firstRegister {
            self = .byteMask(mask: mask)
        } else if let form = Self.xsaveForms[name] {
            self = .xsave(form)
        } else if name == "enter", !operandSize16, case .immediate(let nesting)? = operands.last {
            self = .enter(nesting: Int(nesting & 31))
        } else if name == "pop", case .memory(let m)? = operands.first, memory[m].base == "rsp" || memory[m].base == "esp" {
            self = .popStackRelative(size: memory[m].size)
        } else if name == "bts" || name == "btr" || name == "btc", operands.count == 2,
                  case .register(let offset, _) = operands[0], case .memory(let m) = operands[1] {
            self = .bitTest(offsetRegister: offset, size: memory[m].size)
        } else {
            return nil
        }
    }

    /// The index vector register of an EVEX VSIB address (capstone 4 names a general
    /// register instead): SIB.index, extended by EVEX.X and EVEX.V'.
    static func vsibIndex(_ bytes: [UInt8]) -> Int? {
        let prefixes: Set<UInt8> = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65]
        guard let i = bytes.firstIndex(where: { !prefixes.contains($0) }), bytes[i] == 0x62, i + 6 < bytes.count else { return nil }
        let p0 = bytes[i + 1], p2 = bytes[i + 3], modrm = bytes[i + 5], sib = bytes[i + 6]
        guard modrm & 7 == 4, modrm >> 6 != 3 else { return nil }
        let x = Int(~p0 >> 6 & 1), vPrime = Int(~p2 >> 3 & 1)
        return Int(sib >> 3 & 7) | x << 3 | vPrime << 4
    }

    /// Whether capstone's memory operands give real addresses (a scatter's index is a vector
    /// register capstone misnames; maskmovdqu's destination is implicit).
    public var operandAddressesValid: Bool {
        switch self {
        case .scatter, .byteMask: false
        default: true
        }
    }

    /// Whether the write set needs the opmask or vector registers.
    public var needsVectorState: Bool {
        switch self {
        case .masked, .scatter, .vectorMask, .byteMask: true
        case .compress(_, _, let mask), .downConvert(_, _, let mask): mask != nil
        case .xsave, .enter, .popStackRelative, .bitTest: false
        }
    }

    /// The bytes the instruction writes, from the registers before it ran.
    func writeSet(_ insn: DecodedInstruction, before regs: Registers, vector: VectorState?, layout: XsaveLayout = .current) -> WriteSet {
        let end = insn.address &+ UInt64(insn.length)
        let fs = UInt64(regs.fs_base), gs = UInt64(regs.gs_base)
        let destination = insn.memoryOperands.last { $0.written } ?? insn.memoryOperands.last
        func start() -> UInt64? { destination?.address(before: regs, instructionEnd: end, fsBase: fs, gsBase: gs) }
        func opmask(_ name: String?) -> UInt64? {
            guard let name else { return UInt64.max }  // no {k}: every lane
            return vector?.opmask(name)
        }
        let unreadable = WriteSet.notComputable("\(insn.mnemonic): mask registers unreadable")
        switch self {
        case let .masked(element, lanes, name):
            guard let base = start() else { return .notComputable(insn.mnemonic) }
            guard let mask = opmask(name) else { return unreadable }
            return .lanes(base: base, element: element, selected: (0..<lanes).filter { mask >> UInt64($0) & 1 == 1 })
        case let .compress(element, lanes, name), let .downConvert(element, lanes, name):
            guard let base = start() else { return .notComputable(insn.mnemonic) }
            guard let mask = opmask(name) else { return unreadable }
            let selected = (0..<lanes).filter { mask >> UInt64($0) & 1 == 1 }
            if case .compress = self {
                return .ranges(selected.isEmpty ? [] : [WriteRange(address: base, size: selected.count * element)])
            }
            return .lanes(base: base, element: element, selected: selected)
        case let .scatter(element, indexElement, lanes, index, name):
            guard let operand = destination, let vector, let mask = vector.opmask(name), let indices = vector.register(index) else { return unreadable }
            var base = UInt64(bitPattern: operand.displacement)
            if let b = operand.base {
                guard let r = RegisterReference(name: b) else { return .notComputable(insn.mnemonic) }
                base &+= r.value(in: regs)
            }
            switch operand.segment {
            case "fs": base &+= fs
            case "gs": base &+= gs
            default: break
            }
            var ranges: [WriteRange] = []
            for lane in 0..<lanes where mask >> UInt64(lane) & 1 == 1 {
                guard (lane + 1) * indexElement <= indices.count else { break }
                let i = Self.signedLane(indices, lane: lane, size: indexElement)
                var address = base &+ UInt64(bitPattern: i &* Int64(max(operand.scale, 1)))
                if operand.addressSize32 { address &= 0xffff_ffff }
                ranges.append(WriteRange(address: address, size: element))
            }
            // Lanes may land in any order, and on the same bytes.
            return .ranges(WriteSet.merged(ranges.sorted { $0.address < $1.address }))
        case let .vectorMask(element, lanes, name):
            guard let base = start() else { return .notComputable(insn.mnemonic) }
            guard let mask = vector?.register(name) else { return unreadable }
            let selected = (0..<lanes).filter { mask[$0 * element + element - 1] & 0x80 != 0 }
            return .lanes(base: base, element: element, selected: selected)
        case .byteMask(let name):
            guard let mask = vector?.register(name) else { return unreadable }
            var base = UInt64(regs.rdi)
            if insn.addressSize32 { base &= 0xffff_ffff }
            return .lanes(base: base, element: 1, selected: (0..<16).filter { mask[$0] & 0x80 != 0 })
        case .xsave(let form):
            guard let base = start() else { return .notComputable(insn.mnemonic) }
            let requested = UInt64(regs.rdx & 0xffff_ffff) << 32 | UInt64(regs.rax & 0xffff_ffff)
            guard let ranges = layout.written(form, requested: requested) else {
                return .notComputable("\(insn.mnemonic): supervisor state (privileged)")
            }
            return .ranges(ranges.map { WriteRange(address: base &+ UInt64($0.lowerBound), size: $0.count) })
        case .enter(let nesting):
            let size = 8 * (nesting + 1)
            return .ranges([WriteRange(address: UInt64(regs.rsp) &- UInt64(size), size: size)])
        case .popStackRelative(let size):
            var after = regs
            after.rsp = regs.rsp &+ UInt64(size)
            guard let operand = destination, let address = operand.address(before: after, instructionEnd: end, fsBase: fs, gsBase: gs) else {
                return .notComputable(insn.mnemonic)
            }
            return .ranges([WriteRange(address: address, size: size)])
        case let .bitTest(name, size):
            guard let base = start(), let register = GeneralRegister.named(name), [2, 4, 8].contains(size) else {
                return .notComputable(insn.mnemonic)
            }
            // The bit offset is signed, as wide as the operand.
            let raw: UInt64 = regs.value(register)
            let bits = UInt64(size * 8)
            let offset = bits == 64 ? Int64(bitPattern: raw) : Int64(bitPattern: raw << (64 - bits)) >> Int64(64 - bits)
            let word = offset >> Int64(bits.trailingZeroBitCount)  // floor(offset / bits)
            return .ranges([WriteRange(address: base &+ UInt64(bitPattern: word &* Int64(size)), size: size)])
        }
    }

    static func signedLane(_ bytes: [UInt8], lane: Int, size: Int) -> Int64 {
        var value: UInt64 = 0
        for b in 0..<size { value |= UInt64(bytes[lane * size + b]) << UInt64(8 * b) }
        if size == 4 { return Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: value))) }
        return Int64(bitPattern: value)
    }
}

extension WriteSet {
    /// Lanes `selected` (sorted) of `element` bytes from `base`, adjacent lanes merged.
    static func lanes(base: UInt64, element: Int, selected: [Int]) -> WriteSet {
        .ranges(merged(selected.map { WriteRange(address: base &+ UInt64($0 * element), size: element) }))
    }

    /// Adjacent ranges (in order) joined into one.
    static func merged(_ ranges: [WriteRange]) -> [WriteRange] {
        var out: [WriteRange] = []
        for r in ranges {
            if let last = out.last, r.address >= last.address, r.address <= last.address &+ UInt64(last.size) {
                let end = max(last.address &+ UInt64(last.size), r.address &+ UInt64(r.size))
                out[out.count - 1] = WriteRange(address: last.address, size: Int(truncatingIfNeeded: end &- last.address))
            } else {
                out.append(r)
            }
        }
        return out
    }
}

/// Where XSAVE puts each state component (CPUID leaf 0xD) and which ones the OS enabled (XCR0).
public struct XsaveLayout: Sendable, Equatable {
    /// Component i >= 2: (standard-format offset, size, 64-byte aligned when compacted).
    public var components: [Int: (offset: Int, size: Int, aligned: Bool)]
    public var xcr0: UInt64

    public static func == (a: XsaveLayout, b: XsaveLayout) -> Bool {
        a.xcr0 == b.xcr0 && a.components.keys.sorted() == b.components.keys.sorted()
            && a.components.allSatisfy { k, v in b.components[k].map { $0 == v } ?? false }
    }

    public init(components: [Int: (offset: Int, size: Int, aligned: Bool)], xcr0: UInt64) {
        self.components = components
        self.xcr0 = xcr0
    }

    /// This machine's.
    public static let current: XsaveLayout = {
        var components: [Int: (offset: Int, size: Int, aligned: Bool)] = [:]
        let xcr0 = cow_xcr0()
        for i in 2..<63 where xcr0 >> UInt64(i) & 1 == 1 {
            var offset: UInt32 = 0, size: UInt32 = 0
            if cow_xsave_component(Int32(i), &offset, &size) == 0 {
                components[i] = (Int(offset), Int(size), cow_xsave_component_aligned(Int32(i)) != 0)
            }
        }
        return XsaveLayout(components: components, xcr0: xcr0)
    }()

    /// Byte ranges of the save area the instruction writes for `requested` (EDX:EAX); nil
    /// for xsaves (supervisor components, privileged). xsaveopt and xsavec may skip
    /// components in their initial or unmodified state: their set is what they may write.
    func written(_ form: IrregularStore.XsaveForm, requested: UInt64) -> [Range<Int>]? {
        let rfbm = form == .fxsave ? 3 : requested & xcr0
        var ranges: [Range<Int>] = []
        // The legacy region: x87 (FCW…FDP, ST0–7), MXCSR and MXCSR_MASK, XMM0–15.
        if rfbm & 1 != 0 { ranges += [0..<24, 32..<160] }
        if rfbm & 6 != 0 { ranges.append(24..<32) }
        if rfbm & 2 != 0 { ranges.append(160..<416) }
        switch form {
        case .fxsave:
            return Self.joined(ranges)
        case .xsave, .xsaveopt:
            ranges.append(512..<520)  // XSTATE_BV
            for (i, c) in components where rfbm >> UInt64(i) & 1 == 1 { ranges.append(c.offset..<(c.offset + c.size)) }
        case .xsavec:
            ranges.append(512..<576)  // XSTATE_BV, XCOMP_BV, the rest of the header zeroed
            var offset = 576
            for i in components.keys.sorted() where rfbm >> UInt64(i) & 1 == 1 {
                let c = components[i]!
                if c.aligned { offset = (offset + 63) & ~63 }
                ranges.append(offset..<(offset + c.size))
                offset += c.size
            }
        case .xsaves:
            return nil
        }
        return Self.joined(ranges)
    }

    static func joined(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, last.upperBound >= r.lowerBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }
}
