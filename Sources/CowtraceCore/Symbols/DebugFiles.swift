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

        fileprivate init?(path: String) {
            callbacks = .allocate(capacity: 1)
            callbacks.initialize(to: Dwfl_Callbacks(find_elf: dwfl_build_id_find_elf, find_debuginfo: dwfl_standard_find_debuginfo,
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
        files[buildID] = .some(made)
        order.append(buildID)
        if order.count > Self.limit { files[order.removeFirst()] = nil }
        return made
    }

    /// How many files are open (a debug figure: bounded).
    var count: Int { files.count }
}
