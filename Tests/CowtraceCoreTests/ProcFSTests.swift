@testable import CowtraceCore
import Testing

/// /proc parsers on text as the kernel writes it (Linux 6.x), no process needed.
@Suite struct ProcFSTests {
    static let status = """
        Name:\tredis-server
        Umask:\t0022
        State:\tS (sleeping)
        Tgid:\t4242
        Ngid:\t0
        Pid:\t4245
        PPid:\t1
        SigQ:\t0/94999
        SigPnd:\t0000000000000000
        ShdPnd:\t0000000000000020
        SigBlk:\tfffffffe7ffbfeff
        SigIgn:\t0000000000001001
        SigCgt:\t00000001000044ea
        NoNewPrivs:\t0
        Seccomp:\t0

        """

    @Test func statusFields() {
        let s = ProcFS.Status(parsing: Self.status)
        #expect(s.pid("Tgid") == 4242 && s.pid("Pid") == 4245 && s.pid("PPid") == 1)
        #expect(s.fields["Name"] == "redis-server" && s.fields["State"] == "S (sleeping)")
        #expect(s.signals("SigIgn") == 0x1001)
        // SIGHUP (1) and SIGPIPE (13) ignored; SIGTRAP (5) pending for the process (ShdPnd bit 5).
        #expect(s.contains(1, in: "SigIgn") == true && s.contains(13, in: "SigIgn") == true && s.contains(2, in: "SigIgn") == false)
        #expect(s.contains(6, in: "ShdPnd") == true && s.contains(5, in: "SigPnd") == false)
        #expect(s.contains(5, in: "SigBlk") == true && s.contains(9, in: "SigBlk") == false)
        #expect(s.pid("Missing") == nil && s.signals("Name") == nil)
    }

    @Test func statStateAfterTheLastParenthesis() {
        // A command name may hold ") " itself.
        let stat = Array("4245 (evil) R (x) t 1 4242 4242 0 -1".utf8)
        #expect(ProcFS.state(parsingStat: stat) == "t")
        #expect(ProcFS.state(parsingStat: Array("1 (init) S 0".utf8)) == "S")
        #expect(ProcFS.state(parsingStat: Array("garbage".utf8)) == nil)
        #expect(ProcFS.state(parsingStat: Array("1 (x)".utf8)) == nil)
        #expect(ProcFS.parentPid(parsingStat: stat) == 1)
        #expect(ProcFS.parentPid(parsingStat: Array("7 (a) b) (c) R 42 7 7 0".utf8)) == 42)
        #expect(ProcFS.parentPid(parsingStat: Array("1 (x) S".utf8)) == nil)
    }
    /// libdw's default debug path is ":.debug:/usr/lib/debug" (libdwfl.h): beside the file, in
    /// its .debug directory, under /usr/lib/debug; named by .gnu_debuglink, else the file's name.
    @Test func debugLinkCandidatesFollowLibdwDefaultPath() {
        #expect(DebugFileLookup.linkCandidates(file: "/usr/bin/bash", debuglink: "0b1d.debug")
                == ["/usr/bin/0b1d.debug", "/usr/bin/.debug/0b1d.debug", "/usr/lib/debug/usr/bin/0b1d.debug"])
        #expect(DebugFileLookup.linkCandidates(file: "/opt/app/server", debuglink: nil)
                == ["/opt/app/.debug/server", "/usr/lib/debug/opt/app/server"])
        #expect(DebugFileLookup.linkCandidates(file: "relative/file", debuglink: "x.debug").isEmpty)
    }
}
