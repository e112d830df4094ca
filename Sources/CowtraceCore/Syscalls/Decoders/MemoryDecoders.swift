/// mmap, munmap, mprotect, brk, madvise, mremap, msync, mlock: strace's mem.c.
enum MemoryDecoders {
    static let all: [([String], any SyscallDecoder)] = [
        (["mmap"], Mmap()),
        (["munmap", "mlock", "munlock"], AddressLength()),
        (["mprotect"], Mprotect()),
        (["brk"], Brk()),
        (["madvise"], Madvise()),
        (["mremap"], Mremap()),
    ]

    static let protections = Xlat.mmapProtections
    static let mapTypes = Xlat.mmapTypes
    static let mapFlags = Xlat.mmapFlags
    static let advice = Xlat.madviseAdvice
    static let remapFlags = Xlat.mremapFlags

    static func protection(_ value: UInt64) -> String {
        value == 0 ? "PROT_NONE" : StraceFormat.flags(value, protections)
    }

    /// MAP_PRIVATE|MAP_ANONYMOUS…: the mapping type first, then the flag bits.
    static func mapping(_ value: UInt64) -> String {
        let type = StraceFormat.value(value & 0xf, mapTypes, fallback: StraceFormat.hexOrZero(value & 0xf))
        let rest = value & ~0xf
        return rest == 0 ? type : type + "|" + StraceFormat.flags(rest, mapFlags)
    }

    struct Mmap: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String {
            "\(StraceFormat.address(c[0])), \(c[1]), \(protection(c[2])), \(mapping(c[3])), \(StraceFormat.fd(c[4])), \(StraceFormat.hexOrZero(c[5]))"
        }
        var returnStyle: ReturnStyle { .hex }
    }

    struct AddressLength: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String { "\(StraceFormat.address(c[0])), \(c[1])" }
    }

    struct Mprotect: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String {
            "\(StraceFormat.address(c[0])), \(c[1]), \(protection(c[2]))"
        }
    }

    struct Brk: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String { StraceFormat.address(c[0]) }
        var returnStyle: ReturnStyle { .hex }
    }

    struct Madvise: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String {
            "\(StraceFormat.address(c[0])), \(c[1]), \(StraceFormat.value(c[2], advice, fallback: "\(c[2])"))"
        }
    }

    struct Mremap: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String {
            var out = "\(StraceFormat.address(c[0])), \(c[1]), \(c[2]), \(StraceFormat.flags(c[3], remapFlags))"
            if c[3] & 2 != 0 { out += ", " + StraceFormat.address(c[4]) }
            return out
        }
        var returnStyle: ReturnStyle { .hex }
    }
}
