import ArgumentParser
import CowtraceCore
import Glibc

/// `cowtrace paddr PID ADDR...`: virtual -> physical, with the page's flags.
public struct PaddrCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "paddr", abstract: "Show the physical frame and pagemap flags of addresses in a process.")

    @Argument(help: "The process.") var pid: Int32
    @Argument(help: "Addresses (0x… or decimal).") var addresses: [String]

    public init() {}

    public func validate() throws {
        if addresses.isEmpty { throw ValidationError("paddr needs at least one ADDR") }
    }

    public func run() throws {
        let values = try addresses.map(PageInspector.parseAddress)
        let infos = try PageInspector.describe(pid: pid, addresses: values)
        if !FrameNumber.visible || infos.contains(where: { $0.entry.present && $0.entry.frame == 0 }) {
            print("cowtrace: frame numbers are hidden without CAP_SYS_ADMIN: flags only")
        }
        for info in infos { print(info.text) }
    }
}

/// `cowtrace pages PID [PID...]`: which pages these processes share, per mapping.
public struct PagesCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pages", abstract: "Count, per mapping of the first process, the pages it shares (same frame) with each other process.")

    @Argument(help: "Processes; the first one's mappings are listed.") var pids: [Int32]
    @Flag(help: "List every page.") var list = false

    public init() {}

    public func validate() throws {
        if pids.isEmpty { throw ValidationError("pages needs at least one PID") }
    }

    public func run() throws {
        let (visible, mappings) = try PageInspector.compare(pids)
        if !visible {
            return printWithoutFrames(mappings)
        }
        let others = pids.dropFirst()
        print("mapping                                   present  " + others.map { "shared with \($0)" }.joined(separator: "  ") + "  private  region")
        for m in mappings where m.present > 0 {
            let range = "\(hexString(m.mapping.start))-\(hexString(m.mapping.end))".padding(40)
            let shared = zip(others, m.sharedWith).map { pid, n in String(n).leftPad("shared with \(pid)".count) }.joined(separator: "  ")
            print("\(range)  \(String(m.present).leftPad(7))  \(shared)  \(String(m.privatePages).leftPad(7))  \(m.mapping.region)")
            if list {
                for p in m.pages {
                    let with = p.sharedWith.isEmpty ? "private" : "shared with " + p.sharedWith.map(String.init).joined(separator: ",")
                    print("    \(hexString(p.page))  frame \(hexString(p.frame))  \(with)")
                }
            }
        }
    }

    /// Without frame numbers only the exclusive bit is left: whether some other process
    /// maps the page too, not which one.
    private func printWithoutFrames(_ mappings: [PageInspector.MappingShare]) {
        print("cowtrace: frame numbers are hidden without CAP_SYS_ADMIN: which process shares a page cannot be shown; "
              + "'not exclusive' pages of \(pids[0]) are mapped by some other process too (pagemap bit 56)")
        print("mapping                                   present  exclusive  not exclusive  region")
        for m in mappings where m.present > 0 {
            let range = "\(hexString(m.mapping.start))-\(hexString(m.mapping.end))".padding(40)
            print("\(range)  \(String(m.present).leftPad(7))  \(String(m.exclusive).leftPad(9))  \(String(m.present - m.exclusive).leftPad(13))  \(m.mapping.region)")
            if list {
                for p in m.pages { print("    \(hexString(p.page))  frame unknown  \(p.exclusive ? "exclusive" : "not exclusive")") }
            }
        }
    }
}

func hexString(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
