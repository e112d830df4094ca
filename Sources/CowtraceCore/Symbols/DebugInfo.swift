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

    init?(pid: pid_t) {
        callbacks = .allocate(capacity: 1)
        callbacks.initialize(to: Dwfl_Callbacks(find_elf: dwfl_linux_proc_find_elf,
                                                find_debuginfo: dwfl_standard_find_debuginfo,
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
        var offset: GElf_Off = 0
        var sym = GElf_Sym()
        // libdw falls back to the nearest symbol below the address even when that symbol
        // ends before it (a static function in a binary stripped to .dynsym): that would
        // be a wrong name, so a symbol must cover the address (or be a label at it).
        if let name = dwfl_module_addrinfo(module, GElf_Addr(lookup), &offset, &sym, nil, nil, nil),
           sym.st_size > 0 ? UInt64(offset) < UInt64(sym.st_size) : offset == 0 {
            // "__libc_start_main@@GLIBC_2.34": the version is not part of the function's name.
            let full = String(cString: name)
            result.symbol = full.firstIndex(of: "@").map { String(full[..<$0]) } ?? full
            result.offset = UInt64(offset) &+ (address &- lookup)
        }
        if let line = dwfl_module_getsrc(module, Dwarf_Addr(lookup)) {
            var lineNumber: Int32 = 0
            if let file = dwfl_lineinfo(line, nil, &lineNumber, nil, nil, nil) {
                result.file = String(cString: file)
                result.line = Int(lineNumber)
            }
        }
        return result
    }
}
