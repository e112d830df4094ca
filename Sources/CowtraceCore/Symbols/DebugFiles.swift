import CLibdw
import Glibc

/// Debug information per ELF file, by build-id, shared by every process and layout that maps
/// the file. libdw reads a module's debug info once per session, decompressing its compressed
/// .debug sections (Debian's libc6-dbg) each time; a session serves one address-space layout,
/// and every exec'd program is a new layout: a shell script's shells each decompressed libc's
/// again. Here each file is opened once, on its own at its link-time addresses, and asked
/// with addresses moved there from the process's.
final class DebugFiles {
    final class File {
        let dwfl: OpaquePointer
        let module: OpaquePointer
        /// This session's address of the file's vaddr 0.
        let bias: UInt64
        private let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
        /// What was found at an address of the file (its symbol and the offset into it, its
        /// source line): libdw searches the symbol table anew for every address asked.
        var located: [UInt64: (symbol: String?, offset: UInt64?, file: String?, line: Int?)] = [:]
        static let locatedLimit = 1 << 16

        fileprivate init?(path: String) {
            callbacks = .allocate(capacity: 1)
            callbacks.initialize(to: Dwfl_Callbacks(find_elf: dwfl_build_id_find_elf, find_debuginfo: DebugFileLookup.find,
                                                    section_address: dwfl_offline_section_address, debuginfo_path: nil))
            guard let dwfl = dwfl_begin(callbacks) else {
                callbacks.deallocate()
                return nil
            }
            dwfl_report_begin(dwfl)
            let module = dwfl_report_elf(dwfl, path, path, -1, 0, false)
            dwfl_report_end(dwfl, nil, nil)
            var bias: GElf_Addr = 0
            guard let module, dwfl_module_getelf(module, &bias) != nil else {
                dwfl_end(dwfl)
                callbacks.deallocate()
                return nil
            }
            self.dwfl = dwfl
            self.module = module
            self.bias = UInt64(bias)
        }

        deinit {
            dwfl_end(dwfl)
            callbacks.deallocate()
        }
    }

    /// By build-id; nil: the file could not be opened on its own.
    private var files: [[UInt8]: File?] = [:]
    /// Least recently used first: the files kept are bounded, whatever the run.
    private var order: [[UInt8]] = []
    static let limit = 64

    /// The file with this build-id, opened from `path` the first time.
    func file(buildID: [UInt8], path: String) -> File? {
        if let known = files[buildID] {
            if order.last != buildID, let i = order.firstIndex(of: buildID) {
                order.remove(at: i)
                order.append(buildID)
            }
            return known
        }
        let made = File(path: path)
        keep(buildID, made)
        return made
    }

    private func keep(_ buildID: [UInt8], _ file: File?) {
        files[buildID] = .some(file)
        order.append(buildID)
        if order.count > Self.limit { files[order.removeFirst()] = nil }
    }

    /// A module's build-id (its main file loaded first); nil when it has none.
    static func buildID(of module: OpaquePointer) -> [UInt8]? {
        var bias: GElf_Addr = 0
        var bits: UnsafePointer<UInt8>?
        var idAddress: GElf_Addr = 0
        guard dwfl_module_getelf(module, &bias) != nil, case let n = dwfl_module_build_id(module, &bits, &idAddress), n > 0, let bits else { return nil }
        return Array(UnsafeBufferPointer(start: bits, count: Int(n)))
    }

    /// How many files are open (a debug figure: bounded).
    var count: Int { files.count }

    /// Files asked to be warmed, by identity (inode and path): each is read once.
    private var warmed: Set<String> = []

    /// Reads the file at `path` ahead of need: its debug info (decompressed) and symbol table,
    /// the slow part of naming a first frame in it, done while the program runs and nothing
    /// waits for the tracer. Returns whether a file was read (nothing was, for a known one).
    @discardableResult
    func warm(path: String, identity: String) -> Bool {
        if warmed.count >= 4096 { warmed.removeAll() }
        guard warmed.insert(identity).inserted, let made = File(path: path),
              let buildID = Self.buildID(of: made.module), files[buildID] == nil else { return false }
        var bias: Dwarf_Addr = 0
        _ = dwfl_module_getdwarf(made.module, &bias)
        _ = dwfl_module_getsymtab(made.module)
        keep(buildID, made)
        return true
    }
}
