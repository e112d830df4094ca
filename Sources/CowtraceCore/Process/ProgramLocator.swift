import Glibc

/// Finds PROGRAM the way execvp does: a name with a slash is a path, otherwise search $PATH.
/// Failing here gives a clear message before any process is created.
public enum ProgramLocator {
    public static func locate(_ program: String, path searchPath: String? = getenv("PATH").map { String(cString: $0) }) throws -> String {
        guard !program.isEmpty else { throw CowtraceError("empty program name") }
        if program.contains("/") {
            try checkExecutable(program)
            return program
        }
        let directories = (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false)
        var sawNonExecutable = false
        for dir in directories {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + program
            var st = stat()
            guard stat(candidate, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            if access(candidate, X_OK) == 0 { return candidate }
            sawNonExecutable = true
        }
        if sawNonExecutable { throw CowtraceError("'\(program)': Permission denied") }
        throw CowtraceError("Can't stat '\(program)': No such file or directory")
    }

    static func checkExecutable(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw CowtraceError("Can't stat '\(path)': \(ErrnoNames.message(errno))")
        }
        if st.st_mode & S_IFMT == S_IFDIR { throw CowtraceError("'\(path)': Is a directory") }
        guard access(path, X_OK) == 0 else { throw CowtraceError("'\(path)': Permission denied") }
    }
}
