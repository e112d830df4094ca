import Foundation

/// The C programs in Fixtures/, compiled by the tests with gcc (-g -O0 -no-pie, so `nm`
/// addresses are run-time addresses).
enum Fixtures {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var built: [String: String] = [:]
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "cowtrace-fixtures-\(getpid())"
        // A directory left by an earlier test process with the same pid holds its builds
        // (a stale copy of cowtrace in it once made a run fail with "invalid --engine").
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    /// Compiles Fixtures/NAME.c once per test run and returns the binary's path.
    static func path(_ name: String, extraFlags: [String] = []) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let key = ([name] + extraFlags).joined(separator: " ")
        if let path = built[key] { return path }
        let source = Paths.packageRoot.appendingPathComponent("Fixtures/\(name).c").path
        let suffix = extraFlags.isEmpty ? "" : "-" + String(abs(key.hashValue))
        let output = directory + "/" + name + suffix
        let result = try Command.run(["/usr/bin/gcc", "-g", "-O0", "-no-pie", "-pthread", "-o", output, source] + extraFlags)
        guard result.status == 0 else { throw FixtureError.compile(name, result.stderr) }
        built[key] = output
        return output
    }

    /// The address of a symbol (an asm label, a global) from `nm`.
    static func symbol(_ name: String, in binary: String) throws -> UInt64 {
        let result = try Command.run(["/usr/bin/nm", binary])
        for line in result.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3, parts[2] == name, let value = UInt64(parts[0], radix: 16) { return value }
        }
        throw FixtureError.noSymbol(name, binary)
    }
}

extension Fixtures {
    /// "file:line" of an address, from addr2line.
    static func sourceLine(of address: UInt64, in binary: String) throws -> String {
        let out = try Command.run(["/usr/bin/addr2line", "-e", binary, String(format: "0x%llx", address)]).stdout
        return out.split(separator: "\n").first.map { String($0.split(separator: " ").first ?? $0) } ?? "?"
    }
}

enum FixtureError: Error, CustomStringConvertible {
    case compile(String, String)
    case noSymbol(String, String)
    var description: String {
        switch self {
        case .compile(let name, let err): "gcc failed on \(name): \(err)"
        case .noSymbol(let sym, let bin): "nm: no symbol \(sym) in \(bin)"
        }
    }
}
