import CowtraceCore
import Glibc
import Testing

@Suite struct WaitStatusTests {
    @Test func exitedAndKilled() {
        #expect(WaitStatus(raw: 3 << 8) == .exited(code: 3))
        #expect(WaitStatus(raw: SIGSEGV) == .killed(signal: SIGSEGV, coreDumped: false))
        #expect(WaitStatus(raw: SIGABRT | 0x80) == .killed(signal: SIGABRT, coreDumped: true))
    }

    @Test func stops() {
        let stopped: (Int32) -> Int32 = { ($0 << 8) | 0x7f }
        #expect(WaitStatus(raw: stopped(SIGTRAP | 0x80)) == .syscallStop)
        #expect(WaitStatus(raw: stopped(SIGCHLD)) == .signalStop(signal: SIGCHLD))
        #expect(WaitStatus(raw: (1 << 16) | stopped(SIGTRAP)) == .eventStop(.fork, signal: SIGTRAP))
        #expect(WaitStatus(raw: (128 << 16) | stopped(SIGSTOP)) == .eventStop(.stop, signal: SIGSTOP))
        #expect(WaitStatus(raw: 0xffff) == .continued)
    }
}
