import CLibdw
import Glibc

/// One process's modules, symbols and line tables through libdw (elfutils). Finds separate
/// debug info by build-id (Debian's libc6-dbg), so libc's local functions get their names.
final class DebugInfo {
    struct Location {
        var symbol: String?
        var offset: UInt64?
        var module: String?
        var moduleOffset: UInt64?
        var file: String?
        var line: Int?
    }

    private let dwfl: OpaquePointer
    /// libdw keeps a pointer to the callbacks: they must live as long as the Dwfl.
    private let callbacks: UnsafeMutablePointer<Dwfl_Callbacks>
    /// Symbols and lines are asked of each module's file on its own (`DebugFiles`), shared
    /// with other layouts; this session names the modules and places them.
    private let files: DebugFiles?
    /// Per module of this session: its file, and this layout's address of the file's vaddr 0
    /// (nil: asked of this session's module itself).
    private var shared: [OpaquePointer: (file: DebugFiles.File, bias: UInt64)?] = [:]

    init?(pid: pid_t, files: DebugFiles? = nil) {
        self.files = files
        callbacks = .allocate(capacity: 1)
        callbacks.initialize(to: Dwfl_Callbacks(find_elf: dwfl_linux_proc_find_elf,
                                                find_debuginfo: DebugFileLookup.find,
                                                section_address: nil, debuginfo_path: nil))
        guard let dwfl = dwfl_begin(callbacks) else {
            callbacks.deallocate()
            return nil
        }
        self.dwfl = dwfl
        dwfl_report_begin(dwfl)
        let reported = dwfl_linux_proc_report(dwfl, pid)
        dwfl_report_end(dwfl, nil, nil)
        if reported != 0 { return nil }
    }

    deinit {
        dwfl_end(dwfl)
        callbacks.deallocate()
    }

    /// What is known about `address`. `lookup` may differ (ip - 1 for a return address, so the
    /// call's own line and function are found).
    func locate(_ address: UInt64, lookup: UInt64) -> Location {
        var result = Location()
        guard let module = dwfl_addrmodule(dwfl, Dwarf_Addr(lookup)) else { return result }
        var start: Dwarf_Addr = 0
        if let name = dwfl_module_info(module, nil, &start, nil, nil, nil, nil, nil) {
            result.module = String(cString: name)
            result.moduleOffset = address &- UInt64(start)
        }
        // The same lookups, in the file's own session when it has one; what it answered for an
        // address is kept there, for every layout mapping the file (each exec'd shell).
        var symbolModule = module
        var symbolLookup = lookup
        var sharedFile: DebugFiles.File?
        if let (file, bias) = self.sharedFile(module) {
            symbolModule = file.module
            symbolLookup = lookup &- bias &+ file.bias
            sharedFile = file
            if let known = file.located[symbolLookup] {
                result.symbol = known.symbol
                result.offset = known.offset.map { $0 &+ (address &- lookup) }
                result.file = known.file
                result.line = known.line
                return result
            }
        }
        defer {
            if let sharedFile {
                if sharedFile.located.count >= DebugFiles.File.locatedLimit { sharedFile.located.removeAll(keepingCapacity: true) }
                sharedFile.located[symbolLookup] = (result.symbol, result.offset.map { $0 &- (address &- lookup) }, result.file, result.line)
            }
        }
        var offset: GElf_Off = 0
        var sym = GElf_Sym()
        // libdw falls back to the nearest symbol below the address even when that symbol
        // ends before it (a static function in a binary stripped to .dynsym): that would
        // be a wrong name, so a symbol must cover the address (or be a label at it).
        if let name = dwfl_module_addrinfo(symbolModule, GElf_Addr(symbolLookup), &offset, &sym, nil, nil, nil),
           sym.st_size > 0 ? UInt64(offset) < UInt64(sym.st_size) : offset == 0 {
            // "__libc_start_main@@GLIBC_2.34": the version is not part of the function's name.
            let full = String(cString: name)
            result.symbol = full.firstIndex(of: "@").map { String(full[..<$0]) } ?? full
            result.offset = UInt64(offset) &+ (address &- lookup)
        }
        if let line = dwfl_module_getsrc(symbolModule, Dwarf_Addr(symbolLookup)) {
            var lineNumber: Int32 = 0
            if let file = dwfl_lineinfo(line, nil, &lineNumber, nil, nil, nil) {
                result.file = String(cString: file)
                result.line = Int(lineNumber)
            }
        }
        return result
    }

    /// The module's file in `files` (by build-id), and where this layout placed it.
    private func sharedFile(_ module: OpaquePointer) -> (file: DebugFiles.File, bias: UInt64)? {
        if let known = shared[module] { return known }
        var found: (file: DebugFiles.File, bias: UInt64)?
        var bias: GElf_Addr = 0
        var mainFile: UnsafePointer<CChar>?
        if let files, let buildID = DebugFiles.buildID(of: module), dwfl_module_getelf(module, &bias) != nil,
           dwfl_module_info(module, nil, nil, nil, nil, nil, &mainFile, nil) != nil, let mainFile,
           let file = files.file(buildID: buildID, path: String(cString: mainFile)) {
            found = (file, UInt64(bias))
        }
        shared[module] = .some(found)
        return found
    }
}
