import Glibc

/// Why a page was copied (SPEC.md "cause of a split").
public enum SplitCause: Sendable, Equatable {
    /// A user-mode instruction whose own write covers the page.
    case instruction(InstructionWrite)
    /// The kernel wrote the page during this syscall.
    case syscall(name: String, line: String)
    /// The kernel's CLONE_CHILD_SETTID / CLONE_PARENT_SETTID store during clone.
    case clone(flag: String, pointer: UInt64)
    /// The kernel wrote outside any syscall (e.g. its rseq update on return to user mode).
    case kernel(detail: String?)
    /// No single cause can be named; `note` says why.
    case unknown(note: String)

    /// Whether this cause is a store known to have happened (not a change merely seen).
    public var isWrite: Bool {
        switch self {
        case .instruction, .syscall, .clone: true
        case .kernel(let detail): detail != nil
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
public struct Split: Sendable {
    public let page: UInt64
    public let region: String
    public let kind: PageKind
    public let writer: pid_t
    public let others: [pid_t]
    public let frameBefore: UInt64
    public let frameAfter: UInt64
    public let cause: SplitCause
    public let engine: String
    public var backtrace: [BacktraceFrame] = []
    /// The text of frame #0's source line, when readable.
    public var sourceText: String?
}

/// What the engines report; the text log, JSON and summary are built from these.
public enum CowEvent: Sendable {
    case shared(parent: pid_t, child: pid_t, call: String, anon: Int, file: Int, zero: Int)
    case split(Split)
    case reuse(pid: pid_t, page: UInt64, region: String, frame: UInt64, ip: UInt64?)
    case drop(pid: pid_t, pages: [(page: UInt64, region: String, frame: UInt64)], reason: String)
}
