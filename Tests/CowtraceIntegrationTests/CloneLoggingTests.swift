import Foundation
import Testing

/// cowtrace's clone-family lines are byte-identical to strace's for the same binary.
@Suite(.serialized) struct CloneLoggingTests {
    static let fixtures = ["fork_demo", "clone_settid", "clone_plain", "threads", "vfork_demo", "spawn_demo", "multi_proc"]

    @Test(arguments: fixtures)
    func cloneLinesMatchStrace(_ fixture: String) throws {
        let binary = try Fixtures.path(fixture)
        let strace = try Command.runWithoutRandomization(["/usr/bin/strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork", binary])
        let cowtrace = try Command.runWithoutRandomization([Paths.cowtrace, "-q", binary])
        #expect(strace.status == 0 && cowtrace.status == 0, "strace: \(strace.stderr)\ncowtrace: \(cowtrace.stderr)")
        let expected = StraceLines.cloneCalls(strace.stderr)
        let actual = StraceLines.cloneCalls(cowtrace.stderr)
        #expect(!expected.isEmpty)
        #expect(actual == expected, "cowtrace log:\n\(cowtrace.stderr)")
    }

    /// Without -q every syscall is logged, and the full log's clone lines still match.
    @Test func fullLogKeepsCloneLinesAndNamesEverySyscall() throws {
        let binary = try Fixtures.path("fork_demo")
        let strace = try Command.runWithoutRandomization(["/usr/bin/strace", "-f", "-qq", binary])
        let cowtrace = try Command.runWithoutRandomization([Paths.cowtrace, binary])
        #expect(StraceLines.cloneCalls(cowtrace.stderr) == StraceLines.cloneCalls(strace.stderr))
        let names: (String) -> [String] = { text in
            StraceLines.joined(text).compactMap { line in
                guard let r = line.range(of: #"^[a-z_][a-z0-9_]*\("#, options: .regularExpression) else { return nil }
                return String(line[r].dropLast())
            }
        }
        // Same sequence of syscall names as strace (interleaving of the two processes aside).
        #expect(names(cowtrace.stderr).sorted() == names(strace.stderr).sorted())
        // Memory calls decoded as strace does.
        let straceMmaps = StraceLines.joined(strace.stderr).filter { $0.hasPrefix("mmap(") || $0.hasPrefix("mprotect(") || $0.hasPrefix("munmap(") || $0.hasPrefix("brk(") }
        let cowMmaps = StraceLines.joined(cowtrace.stderr).filter { $0.hasPrefix("mmap(") || $0.hasPrefix("mprotect(") || $0.hasPrefix("munmap(") || $0.hasPrefix("brk(") }
        #expect(cowMmaps == straceMmaps)
        #expect(cowtrace.stderr.contains("+++ exited with 0 +++"))
    }
}
