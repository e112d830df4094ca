import CowtraceCore
import Glibc

/// cowtrace's own options, read up to PROGRAM; everything after it is the program's.
public struct TraceOptions {
    public enum Engine: String, CaseIterable, Sendable { case auto, step, fault, record }
    public enum OnBreak: String, CaseIterable, Sendable { case stop, kill, detach, `continue` }
    public enum Syntax: String, CaseIterable, Sendable { case att, intel }

    public var pid: Int32?
    public var output: String?
    public var json: String?
    public var engine: Engine = .auto
    public var watch: [String] = []
    public var breakOnSplit: Int?
    public var onBreak: OnBreak?
    public var maxSteps: Int?
    /// Record engine: ring buffer pages per CPU, stack bytes per sample, --while-shared.
    public var bufferPages: Int?
    public var stackBytes = 8192
    public var whileShared = false
    public var syscallStops = true
    public var syntax: Syntax = .att
    public var quiet = false
    public var summaryOnly = false
    /// Report files written at the end: --speedscope, --folded, --html.
    public var speedscope: String?
    public var folded: String?
    public var html: String?
    /// PROGRAM [ARGS...]
    public var command: [String] = []

    public init() {}
}

/// A bad command line: one line, exit status 2, pointing to --help.
public struct UsageError: Error, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// One option of the table: its spellings, what it takes, and how it sets the options.
struct OptionSpec: Sendable {
    enum Value: Sendable {
        case none
        /// Takes a value: `--name VALUE`, `--name=VALUE`, `-xVALUE`.
        case required(String)
        /// The value may be left out (`--name` alone, `--name=N`, or `--name N` when N is a number).
        case optionalNumber(String, default: String)
    }
    let names: [String]
    let value: Value
    let help: String
    let apply: @Sendable (inout TraceOptions, String) throws(UsageError) -> Void
}

/// The option table: the one place options are declared (parsing and --help both read it).
/// To add an option, add an entry here and a field to TraceOptions.
enum TraceOptionTable {
    static let options: [OptionSpec] = [
        OptionSpec(names: ["-p"], value: .required("PID"), help: "Attach to the running process PID (and what it forks later).") { o, v throws(UsageError) in
            guard let pid = Int32(v), pid > 0 else { throw UsageError("invalid value '\(v)' for -p: expected a process id") }
            o.pid = pid
        },
        OptionSpec(names: ["-o"], value: .required("FILE"), help: "Write the log to FILE instead of stderr.") { o, v in o.output = v },
        OptionSpec(names: ["--json"], value: .required("FILE"), help: "Write events as JSON lines to FILE ('-' for stdout).") { o, v in o.json = v },
        OptionSpec(names: ["--engine"], value: .required("auto|step|fault|record"), help: "Detection engine (default auto: fault where the kernel allows; record: no stop per fault).") { o, v throws(UsageError) in
            o.engine = try choice(v, "--engine")
        },
        OptionSpec(names: ["--buffer-pages"], value: .required("N"), help: "Record engine: ring buffer pages per CPU, a power of two (default 4096 as root, 64 otherwise; halved until the mlock limit allows).") { o, v throws(UsageError) in
            guard let n = Int(v), n > 0, n & (n - 1) == 0 else { throw UsageError("invalid value \(v) for --buffer-pages: expected a power of two") }
            o.bufferPages = n
        },
        OptionSpec(names: ["--stack-bytes"], value: .required("N"), help: "Record engine: bytes of user stack copied with each sample (default 8192).") { o, v throws(UsageError) in
            guard let n = Int(v), n >= 8, n <= 65_000 else { throw UsageError("invalid value \(v) for --stack-bytes: expected a number from 8 to 65000") }
            o.stackBytes = n
        },
        OptionSpec(names: ["--no-syscall-stops"], value: .none, help: "Record engine, root, with -q: no syscall stops either; the kernel's stores are named from the call chain of their faults (syscall name and arguments, not its result).") { o, _ in o.syscallStops = false },
        OptionSpec(names: ["--while-shared"], value: .none, help: "Record engine: once a child has shared pages and nothing is shared any more, detach and end (a server's fork, as Redis BGSAVE).") { o, _ in o.whileShared = true },
        OptionSpec(names: ["--watch"], value: .required("ADDR|REGION"), help: "Track only these pages: ADDR, 0xA-0xB, or a maps name such as [stack], [heap], /path (repeatable).") { o, v throws(UsageError) in
            do { _ = try WatchFilter(parsing: [v]) } catch { throw UsageError((error as? CowtraceError)?.message ?? "malformed --watch '\(v)'") }
            try namesAMapping(v)
            o.watch.append(v)
        },
        OptionSpec(names: ["--break-on-split"], value: .optionalNumber("N", default: "1"), help: "Stop at the Nth split (default 1).") { o, v throws(UsageError) in
            o.breakOnSplit = try positiveNumber(v, "--break-on-split", minimum: 1)
        },
        OptionSpec(names: ["--on-break"], value: .required("stop|kill|detach|continue"), help: "What to do at a break instead of the prompt (without a terminal on stdin: stop).") { o, v throws(UsageError) in
            o.onBreak = try choice(v, "--on-break")
        },
        OptionSpec(names: ["--max-steps"], value: .required("N"), help: "Single-step at most N instructions; later splits are found at syscall stops.") { o, v throws(UsageError) in
            o.maxSteps = try positiveNumber(v, "--max-steps", minimum: 0)
        },
        OptionSpec(names: ["--syntax"], value: .required("att|intel"), help: "Disassembly syntax (default att).") { o, v throws(UsageError) in
            o.syntax = try choice(v, "--syntax")
        },
        OptionSpec(names: ["-q"], value: .none, help: "Log only clone-family calls, splits and clones.") { o, _ in o.quiet = true },
        OptionSpec(names: ["--summary-only"], value: .none, help: "Print only the end-of-run summary.") { o, _ in o.summaryOnly = true },
        OptionSpec(names: ["--speedscope"], value: .required("FILE"), help: "At the end, write a speedscope profile of the pages copied to FILE.") { o, v in o.speedscope = v },
        OptionSpec(names: ["--folded"], value: .required("FILE"), help: "At the end, write folded stacks (FlameGraph input) to FILE.") { o, v in o.folded = v },
        OptionSpec(names: ["--html"], value: .required("FILE"), help: "At the end, write one self-contained HTML report to FILE.") { o, v in o.html = v },
    ]

    /// A maps name must be one the kernel uses or a file that exists: anything else would
    /// silently watch nothing.
    static func namesAMapping(_ spec: String) throws(UsageError) {
        if spec.hasPrefix("/"), access(spec, F_OK) != 0 {
            throw UsageError("--watch \(spec) names no mapping: \(ErrnoNames.message(errno))")
        }
        let kernelNames = ["[stack]", "[heap]", "[vdso]", "[vvar]", "[vvar_vclock]", "[uprobes]"]
        if spec.hasPrefix("["), !kernelNames.contains(spec), !spec.hasPrefix("[anon:"), !spec.hasPrefix("[anon_shmem:") {
            throw UsageError("--watch \(spec) names no mapping: expected [stack], [heap], [vdso], [anon:NAME] or /path")
        }
    }

    static func positiveNumber(_ text: String, _ name: String, minimum: Int) throws(UsageError) -> Int? {
        guard let n = Int(text), n >= minimum else {
            throw UsageError("invalid value \(text) for \(name): expected a number from \(minimum)")
        }
        return n
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ text: String, _ name: String) throws(UsageError) -> T where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            throw UsageError("invalid value '\(text)' for \(name): expected \(T.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    static let usage = """
        usage: cowtrace [options] PROGRAM [ARGS...]     trace a new program
               cowtrace [options] -p PID                trace a running process (and what it forks later)
               cowtrace paddr PID ADDR...               virtual -> physical for ADDR in PID, with page flags
               cowtrace pages PID [PID...] [--list]     which pages these processes share, per mapping
               cowtrace report EVENTS.jsonl [--speedscope F] [--folded F] [--html F] [--summary-only]
                                                        the summary and reports of a saved --json log
               cowtrace diff A.jsonl B.jsonl [--html F] pages copied per function and call path, A against B
        """

    static var help: String {
        var text = "cowtrace: show copy-on-write at work. Logs every fork/clone like strace, then names the\n"
            + "instruction, syscall or kernel store that copies each shared page.\n\n" + usage + "\n\noptions:\n"
        var rows: [(String, String)] = []
        for option in options {
            var left = option.names.joined(separator: ", ")
            switch option.value {
            case .none: break
            case .required(let name): left += " " + name
            case .optionalNumber(let name, _): left += "[=\(name)]"
            }
            rows.append((left, option.help))
        }
        rows.append(("-h, --help", "Print this help."))
        rows.append(("--version", "Print the version."))
        rows.append(("--", "End of options: what follows is PROGRAM and its arguments."))
        let width = rows.map(\.0.count).max() ?? 0
        for (left, right) in rows {
            text += "  " + left + String(repeating: " ", count: width - left.count + 2) + right + "\n"
        }
        text += "\ncowtrace exits with the program's exit status (128+N when it was killed by signal N).\n"
        return text
    }
}

/// What the command line asks for.
public enum ParsedCommandLine {
    case help
    case version
    case trace(TraceOptions)
}

/// Parses cowtrace's options up to PROGRAM in one pass (linear in the number of arguments:
/// the program's arguments are taken as they are, never looked at).
public enum TraceCommandLine {
    public static func parse(_ arguments: [String]) throws(UsageError) -> ParsedCommandLine {
        var options = TraceOptions()
        var index = 0
        while index < arguments.count {
            let arg = arguments[index]
            if arg == "--" {
                options.command = Array(arguments[(index + 1)...])
                break
            }
            if !arg.hasPrefix("-") || arg == "-" {
                options.command = Array(arguments[index...])
                break
            }
            if arg == "-h" || arg == "--help" { return .help }
            if arg == "--version" { return .version }
            let (spec, inline) = try lookup(arg)
            switch spec.value {
            case .none:
                if inline != nil { throw UsageError("option \(spec.names[0]) takes no value") }
                try spec.apply(&options, "")
            case .required(let name):
                if let inline {
                    try spec.apply(&options, inline)
                } else {
                    guard index + 1 < arguments.count else { throw UsageError("missing value \(name) for \(arg)") }
                    index += 1
                    try spec.apply(&options, arguments[index])
                }
            case .optionalNumber(_, let fallback):
                if let inline {
                    try spec.apply(&options, inline)
                } else if index + 1 < arguments.count, Int(arguments[index + 1]) != nil {
                    index += 1
                    try spec.apply(&options, arguments[index])
                } else {
                    try spec.apply(&options, fallback)
                }
            }
            index += 1
        }
        try validate(options)
        return .trace(options)
    }

    /// The option `arg` names, and a value given with it (`--name=VALUE`, `-oFILE`).
    private static func lookup(_ arg: String) throws(UsageError) -> (OptionSpec, String?) {
        if arg.hasPrefix("--") {
            let parts = arg.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard let spec = TraceOptionTable.options.first(where: { $0.names.contains(name) }) else {
                throw UsageError("unknown option \(name)")
            }
            return (spec, parts.count == 2 ? String(parts[1]) : nil)
        }
        let name = String(arg.prefix(2))
        guard let spec = TraceOptionTable.options.first(where: { $0.names.contains(name) }) else {
            throw UsageError("unknown option \(arg)")
        }
        let rest = String(arg.dropFirst(2))
        if rest.isEmpty { return (spec, nil) }
        if case .none = spec.value { throw UsageError("unknown option \(arg)") }
        return (spec, rest)
    }

    static func validate(_ o: TraceOptions) throws(UsageError) {
        if o.pid == nil && o.command.isEmpty { throw UsageError("must have PROGRAM [ARGS] or -p PID") }
        if o.pid != nil && !o.command.isEmpty { throw UsageError("-p PID and PROGRAM are mutually exclusive") }
        if o.onBreak != nil && o.breakOnSplit == nil { throw UsageError("--on-break needs --break-on-split") }
    }
}
