import CLibdw
import Glibc

/// Where libdw looks for a module's separate debug file: by build-id under /usr/lib/debug,
/// then by .gnu_debuglink beside the file, in its .debug directory and under /usr/lib/debug,
/// as `dwfl_standard_find_debuginfo` does, but without its last resort. For a file with no
/// debug file anywhere (bash, the programs users trace) that one dlopens libdebuginfod, and
/// with it libcurl, GnuTLS and Kerberos: 6–10 ms of each run's start, for a client that asks
/// no server unless DEBUGINFOD_URLS names one. Users who set DEBUGINFOD_URLS get libdw's own
/// search, servers included.
enum DebugFileLookup {
    static let find: @convention(c) (OpaquePointer?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafePointer<CChar>?, GElf_Addr,
                                     UnsafePointer<CChar>?, UnsafePointer<CChar>?, GElf_Word,
                                     UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 = {
        module, userdata, name, base, file, debuglink, crc, found in
        if serversNamed {
            return dwfl_standard_find_debuginfo(module, userdata, name, base, file, debuglink, crc, found)
        }
        let fd = dwfl_build_id_find_debuginfo(module, userdata, name, base, file, debuglink, crc, found)
        if fd >= 0 { return fd }
        // No debug file by build-id: libdw's search by name finds one only where one exists,
        // beside the file or beside what it links to (/lib64/ld-linux-x86-64.so.2).
        guard let file else {
            errno = 0
            return -1
        }
        let link = debuglink.map { String(cString: $0) }
        var paths = [String(cString: file)]
        if let resolved = realpath(file, nil) {
            paths.append(String(cString: resolved))
            free(resolved)
        }
        guard paths.flatMap({ linkCandidates(file: $0, debuglink: link) }).contains(where: { access($0, F_OK) == 0 }) else {
            errno = 0
            return -1
        }
        return dwfl_standard_find_debuginfo(module, userdata, name, base, file, debuglink, crc, found)
    }

    /// Whether the user asked for debuginfod servers.
    private static let serversNamed: Bool = {
        guard let urls = getenv("DEBUGINFOD_URLS") else { return false }
        return urls.pointee != 0
    }()

    /// The paths libdw's default search (":.debug:/usr/lib/debug") tries for `file`'s debug
    /// file, named by its .gnu_debuglink (or, without one, the file's own name).
    static func linkCandidates(file: String, debuglink: String?) -> [String] {
        guard file.hasPrefix("/"), let slash = file.lastIndex(of: "/") else { return [] }
        let directory = String(file[..<slash])
        let name = debuglink ?? String(file[file.index(after: slash)...])
        return ["\(directory)/\(name)", "\(directory)/.debug/\(name)", "/usr/lib/debug\(directory)/\(name)"].filter { $0 != file }
    }
}
