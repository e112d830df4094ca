import Glibc

/// Why a page was copied (SPEC.md "cause of a split").
public enum SplitCause: Sendable, Equatable {
    /// A user-mode instruction whose own write covers the page.
    case instruction(InstructionWrite)
    /// The kernel wrote the page during this syscall.
    case syscall(SyscallCall)
    /// The kernel's CLONE_CHILD_SETTID / CLONE_PARENT_SETTID store during clone.
    case clone(CloneStore, pointer: UInt64)
    /// The kernel wrote outside any syscall; nil when what it stored is not known.
    case kernel(KernelStore?)
    /// No single cause can be named; `note` says why.
    case unknown(note: String)

    /// Whether this cause is a store known to have happened (not a change merely seen).
    public var isWrite: Bool {
        switch self {
        case .instruction, .syscall, .clone: true
        case .kernel(let store): store != nil
        case .unknown: false
        }
    }

    public var name: String {
        switch self {
        case .instruction: "instruction"
        case .syscall: "syscall"
        case .clone: "clone"
        case .kernel: "kernel"
        case .unknown: "unknown"
        }
    }
}

/// The syscall a split is blamed on, with the strace-style line it was logged as (the line
/// is kept even under -q, where it is not printed, so a split can always show it).
public struct SyscallCall: Sendable, Equatable {
    public let name: String
    public let line: String
    public init(name: String, line: String) {
        self.name = name
        self.line = line
    }
}

/// The kernel's own stores during clone, named as the flag that asks for them.
public enum CloneStore: String, Sendable, CaseIterable {
    case childSetTID = "CLONE_CHILD_SETTID"
    case parentSetTID = "CLONE_PARENT_SETTID"

    /// Where the TID goes, in the words of the text log.
    var target: String { self == .childSetTID ? "child TID at child_tidptr" : "child TID at parent_tid" }
}

/// What the kernel is known to have stored outside any syscall (JSON `detail`).
public enum KernelStore: String, Sendable, CaseIterable {
    /// Its rseq bookkeeping on return to user mode, in the thread's registered rseq area.
    case rseq
    /// A signal frame pushed on the stack at delivery.
    case signalFrame = "signal frame"
}

/// The instruction blamed for a copy and the store that touched the page.
public struct InstructionWrite: Sendable, Equatable {
    public let ip: UInt64
    public let bytes: [UInt8]
    public let text: String
    public let address: UInt64
    /// Bytes written on the page (a masked store's lanes need not be adjacent: see `ranges`).
    public let size: Int
    /// Each run of bytes written on the page, where there is more than one.
    public var ranges: [WriteRange] = []
}

/// One frame of a backtrace (filled by the symbol layer).
public struct BacktraceFrame: Sendable, Hashable {
    public let ip: UInt64
    public let symbol: String?
    public let offset: UInt64?
    public let module: String?
    public let moduleOffset: UInt64?
    public let source: String?

    public init(ip: UInt64, symbol: String?, offset: UInt64?, module: String?, moduleOffset: UInt64?, source: String?) {
        self.ip = ip
        self.symbol = symbol
        self.offset = offset
        self.module = module
        self.moduleOffset = moduleOffset
        self.source = source
    }
}

/// A copy-on-write split: `writer`'s frame for `page` changed while `others` still map the old one.
public struct Split: Sendable, Equatable {
    public let page: UInt64
    public let region: String
    public let kind: PageKind
    public let writer: pid_t
    public let others: [pid_t]
    public let frameBefore: UInt64
    public let frameAfter: UInt64
    public let cause: SplitCause
    public let engine: EngineKind
    /// Whether the shared frame was part of a transparent huge page (kpageflags THP bit):
    /// the kernel split the mapping and copied the one 4 KiB page. nil when unreadable.
    public var hugePage: Bool?
    public var backtrace: [BacktraceFrame] = []
    /// The text of frame #0's source line, when readable.
    public var sourceText: String?
}
