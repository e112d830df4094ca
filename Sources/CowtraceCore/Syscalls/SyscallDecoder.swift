/// How a syscall's return value is printed.
public enum ReturnStyle: Sendable {
    case decimal
    case hex          // addresses: mmap, brk, mremap
    case octal        // umask
    case never        // exit, exit_group: "= ?"
}

/// A syscall's raw arguments and, at exit, its result.
public struct SyscallArguments: Sendable {
    public let number: UInt64
    public let name: String
    public let values: [UInt64]
    public subscript(_ i: Int) -> UInt64 { values[i] }
}

public enum SyscallOutcome: Sendable, Equatable {
    case value(Int64)
    case error(Int32)
    /// The process went away inside the call (exit, exit_group, execve in another thread).
    case noReturn

    public init(rval: Int64, isError: Bool) {
        self = isError ? .error(Int32(truncatingIfNeeded: -rval)) : .value(rval)
    }
}

/// Prints one syscall the way strace does. `entry` is the text after "name(" known at
/// entry; `exit` is what follows once the call returns (strace prints output arguments then).
public protocol SyscallDecoder: Sendable {
    func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String
    func exit(_ call: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String
    var returnStyle: ReturnStyle { get }
}

extension SyscallDecoder {
    public func exit(_ call: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String { "" }
    public var returnStyle: ReturnStyle { .decimal }
}

/// strace's printargs: every argument in hex, for calls without a decoder.
struct RawArgumentsDecoder: SyscallDecoder {
    let count: Int
    func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String {
        call.values.prefix(count).map { StraceFormat.hexOrZero($0) }.joined(separator: ", ")
    }
}

public enum SyscallDecoders {
    static let byName: [String: any SyscallDecoder] = {
        var table: [String: any SyscallDecoder] = [:]
        for (names, decoder) in ProcessDecoders.all + MemoryDecoders.all + FileDecoders.all {
            for name in names { table[name] = decoder }
        }
        return table
    }()

    public static func decoder(for number: UInt64) -> any SyscallDecoder {
        let entry = SyscallTable.entry(number)
        if let name = entry?.name, let decoder = byName[name] { return decoder }
        return RawArgumentsDecoder(count: entry?.argumentCount ?? 6)
    }

    /// "= 5", "= 0x7f…", "= -1 ENOENT (No such file or directory)", "= ?".
    public static func result(_ outcome: SyscallOutcome, style: ReturnStyle) -> String {
        switch outcome {
        case .noReturn:
            return "?"
        case .error(let errno) where ErrnoNames.isRestart(errno):
            return "? \(ErrnoNames.name(errno)) (\(ErrnoNames.message(errno)))"
        case .error(let errno):
            return "-1 \(ErrnoNames.name(errno)) (\(ErrnoNames.message(errno)))"
        case .value(let v):
            switch style {
            case .decimal: return String(v)
            case .hex: return StraceFormat.hexOrZero(UInt64(bitPattern: v))
            case .octal: return StraceFormat.octal(UInt64(bitPattern: v))
            case .never: return "?"
            }
        }
    }
}
