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

    static let protections: [(UInt64, String)] = [
        (0x1, "PROT_READ"), (0x2, "PROT_WRITE"), (0x4, "PROT_EXEC"), (0x8, "PROT_SEM"),
        (0x01000000, "PROT_GROWSDOWN"), (0x02000000, "PROT_GROWSUP"),
    ]
    static let mapTypes: [(UInt64, String)] = [(1, "MAP_SHARED"), (2, "MAP_PRIVATE"), (3, "MAP_SHARED_VALIDATE")]
    static let mapFlags: [(UInt64, String)] = [
        (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x40, "MAP_32BIT"), (0x100, "MAP_GROWSDOWN"),
        (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"),
        (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"),
        (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x80000, "MAP_SYNC"),
        (0x100000, "MAP_FIXED_NOREPLACE"), (0x4000000, "MAP_UNINITIALIZED"),
    ]
    static let advice: [(UInt64, String)] = [
        (0, "MADV_NORMAL"), (1, "MADV_RANDOM"), (2, "MADV_SEQUENTIAL"), (3, "MADV_WILLNEED"),
        (4, "MADV_DONTNEED"), (8, "MADV_FREE"), (9, "MADV_REMOVE"), (10, "MADV_DONTFORK"),
        (11, "MADV_DOFORK"), (12, "MADV_MERGEABLE"), (13, "MADV_UNMERGEABLE"), (14, "MADV_HUGEPAGE"),
        (15, "MADV_NOHUGEPAGE"), (16, "MADV_DONTDUMP"), (17, "MADV_DODUMP"), (18, "MADV_WIPEONFORK"),
        (19, "MADV_KEEPONFORK"), (20, "MADV_COLD"), (21, "MADV_PAGEOUT"), (22, "MADV_POPULATE_READ"),
        (23, "MADV_POPULATE_WRITE"), (24, "MADV_DONTNEED_LOCKED"), (25, "MADV_COLLAPSE"),
        (100, "MADV_HWPOISON"), (101, "MADV_SOFT_OFFLINE"), (102, "MADV_GUARD_INSTALL"), (103, "MADV_GUARD_REMOVE"),
    ]
    static let remapFlags: [(UInt64, String)] = [(1, "MREMAP_MAYMOVE"), (2, "MREMAP_FIXED"), (4, "MREMAP_DONTUNMAP")]

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
