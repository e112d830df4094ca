/// read, write, close, openat, pipe2: the file calls most programs make around a fork.
enum FileDecoders {
    static let all: [([String], any SyscallDecoder)] = [
        (["read", "pread64"], Read()),
        (["write", "pwrite64"], Write()),
        (["close", "dup", "fsync", "fdatasync"], SingleDescriptor()),
        (["openat"], Openat()),
        (["pipe2", "pipe"], Pipe()),
    ]

    static let openFlags = Xlat.openFlags

    static func openFlagsText(_ value: UInt64) -> String {
        let mode = ["O_RDONLY", "O_WRONLY", "O_RDWR", "0x3"][Int(value & 3)]
        var rest = value & ~3
        // O_TMPFILE includes O_DIRECTORY; print it as one name like strace.
        var names: [String] = []
        if rest & 0o20200000 == 0o20200000 { names.append("O_TMPFILE"); rest &= ~0o20200000 }
        if rest != 0 { names.append(StraceFormat.flags(rest, openFlags)) }
        return ([mode] + names).joined(separator: "|")
    }

    static func descriptorOrCwd(_ value: UInt64) -> String {
        Int32(truncatingIfNeeded: value) == -100 ? "AT_FDCWD" : StraceFormat.fd(value)
    }

    struct Read: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String { "\(StraceFormat.fd(c[0])), " }
        func exit(_ c: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String {
            var buffer = StraceFormat.address(c[1])
            if case .value(let n) = outcome, n >= 0 {
                let shown = min(Int(n), StraceFormat.maxStringLength)
                if let bytes = memory.read(c[1], count: shown), bytes.count == shown {
                    buffer = StraceFormat.quoted(bytes, truncated: Int(n) > shown)
                }
            }
            let offset = c.name == "pread64" ? ", \(c[3])" : ""
            return "\(buffer), \(c[2])\(offset)"
        }
    }

    struct Write: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String {
            let count = Int(min(c[2], UInt64(StraceFormat.maxStringLength)))
            var buffer = StraceFormat.address(c[1])
            if let bytes = memory.read(c[1], count: count), bytes.count == count {
                buffer = StraceFormat.quoted(bytes, truncated: c[2] > UInt64(count))
            }
            let offset = c.name == "pwrite64" ? ", \(c[3])" : ""
            return "\(StraceFormat.fd(c[0])), \(buffer), \(c[2])\(offset)"
        }
    }

    struct SingleDescriptor: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String { StraceFormat.fd(c[0]) }
    }

    struct Openat: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String {
            var out = "\(descriptorOrCwd(c[0])), \(StraceFormat.path(c[1], memory)), \(openFlagsText(c[2]))"
            if c[2] & 0o100 != 0 || c[2] & 0o20200000 == 0o20200000 {
                out += ", " + String(format0: c[3] & 0o7777)
            }
            return out
        }
    }

    struct Pipe: SyscallDecoder {
        func entry(_ c: SyscallArguments, _ memory: TraceeMemory) -> String { "" }
        func exit(_ c: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String {
            var fds = StraceFormat.address(c[0])
            if case .value = outcome, let pair = memory.read(c[0], count: 8), pair.count == 8 {
                let (a, b) = pair.withUnsafeBytes { ($0.loadUnaligned(as: Int32.self), $0.loadUnaligned(fromByteOffset: 4, as: Int32.self)) }
                fds = "[\(a), \(b)]"
            }
            if c.name == "pipe2" {
                return fds + ", " + StraceFormat.flags(c[1], [(0o2000000, "O_CLOEXEC"), (0o40000, "O_DIRECT"), (0o4000, "O_NONBLOCK"), (0o200000, "O_NOTIFICATION_PIPE")])
            }
            return fds
        }
    }
}

private extension String {
    /// strace prints file modes as 0644.
    init(format0 mode: UInt64) { self = "0" + String(mode, radix: 8).leftPadded(to: 3) }
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
