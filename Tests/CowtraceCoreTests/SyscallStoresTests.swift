import Testing
@testable import CowtraceCore

/// Which user memory a finished syscall may have stored into (used without frame numbers).
@Suite struct SyscallStoresTests {
    func call(_ name: String, _ args: [UInt64]) -> SyscallArguments {
        SyscallArguments(number: 0, name: name, values: args + [UInt64](repeating: 0, count: 6 - args.count))
    }

    @Test func readStoresItsResultLength() {
        let stores = SyscallStores.of(call("read", [3, 0x10ff0, 4096]), .value(32))
        #expect(stores == .ranges([(0x10ff0, 32)]))
        #expect(stores.mayWrite(page: 0x10000))
        #expect(stores.mayWrite(page: 0x11000))  // 0x10ff0 + 32 crosses into the next page
        #expect(!stores.mayWrite(page: 0x12000))
        #expect(!SyscallStores.of(call("read", [3, 0x10ff0, 4096]), .value(0)).mayWrite(page: 0x10000))
    }

    @Test func failedAndOutputlessCallsStoreNothing() {
        #expect(!SyscallStores.of(call("read", [3, 0x10000, 10]), .error(11)).mayWrite(page: 0x10000))
        #expect(!SyscallStores.of(call("write", [1, 0x10000, 10]), .value(10)).mayWrite(page: 0x10000))
        #expect(!SyscallStores.of(call("exit_group", [0]), .noReturn).mayWrite(page: 0x10000))
    }

    @Test func wait4StoresStatusAndRusage() {
        let stores = SyscallStores.of(call("wait4", [100, 0x20008, 0, 0x30000]), .value(100))
        #expect(stores.mayWrite(page: 0x20000) && stores.mayWrite(page: 0x30000) && !stores.mayWrite(page: 0x40000))
        #expect(!SyscallStores.of(call("wait4", [100, 0, 0, 0]), .value(100)).mayWrite(page: 0))
    }

    @Test func cloneStoresParentTidOnlyWithTheFlag() {
        #expect(SyscallStores.of(call("clone", [0x100000 | 17, 0, 0x5000, 0, 0]), .value(7)).mayWrite(page: 0x5000))
        #expect(!SyscallStores.of(call("clone", [17, 0, 0x5000, 0, 0]), .value(7)).mayWrite(page: 0x5000))
    }

    @Test func clonePidfdAndClone3FromItsStruct() {
        // CLONE_PIDFD (0x1000): clone(2) stores the pidfd where parent_tid points.
        #expect(SyscallStores.of(call("clone", [0x1000 | 17, 0, 0x6000, 0, 0]), .value(7)) == .ranges([(0x6000, 4)]))
        // clone3: the pointers come from the struct read at entry; without it, unbounded.
        var args = CloneArgs(bytes: [UInt8](repeating: 0, count: 64))!
        args.flags = 0x100000 | 0x1000 | 0x100  // CLONE_PARENT_SETTID | CLONE_PIDFD | CLONE_VM
        (args.parentTid, args.pidfd, args.childTid) = (0x7008, 0x8010, 0x9000)
        let request = CloneRequest.clone3(args)
        #expect(SyscallStores.of(call("clone3", [0x1000, 88]), .value(7), clone: request) == .ranges([(0x7008, 4), (0x8010, 4)]))
        #expect(!SyscallStores.of(call("clone3", [0x1000, 88]), .value(7), clone: request).mayWrite(page: 0x9000))  // the child's
        #expect(SyscallStores.of(call("clone3", [0x1000, 88]), .value(7)) == .anywhere)
        #expect(SyscallStores.changed(call("clone3", [0x1000, 88]), .value(0), clone: request) == .ranges([(0x7008, 4), (0x8010, 4)]))
    }

    @Test func ioctlRequestsProgramsMakeAreBounded() {
        // TCGETS (isatty) fills the kernel's struct termios, 36 bytes; TIOCGWINSZ a winsize.
        #expect(SyscallStores.of(call("ioctl", [0, 0x5401, 0x7ffc0ff0]), .value(0)) == .ranges([(0x7ffc0ff0, 36)]))
        #expect(SyscallStores.of(call("ioctl", [2, 0x5413, 0x7ffc0000]), .value(0)) == .ranges([(0x7ffc0000, 8)]))
        #expect(SyscallStores.of(call("ioctl", [3, 0x541B, 0x5000]), .value(0)) == .ranges([(0x5000, 4)]))  // FIONREAD
        #expect(SyscallStores.of(call("ioctl", [3, 0x5451, 0]), .value(0)) == .ranges([]))  // FIOCLEX
        // The request is an unsigned int: sign-extended garbage above it does not matter.
        #expect(SyscallStores.of(call("ioctl", [0, 0xffff_ffff_0000_5401, 0x1000]), .value(0)) == .ranges([(0x1000, 36)]))
        // At entry (outcome not known yet) it is bounded the same way: no full sweep.
        #expect(SyscallStores.changed(call("ioctl", [0, 0x5401, 0x1000]), .value(0)) == .ranges([(0x1000, 36)]))
    }

    @Test func unknownCallsMayStoreAnywhere() {
        #expect(SyscallStores.of(call("ioctl", [0, 0, 0]), .value(0)) == .anywhere)
        #expect(SyscallStores.of(call("ioctl", [3, 0xc0186201, 0x1000]), .value(0)) == .anywhere)  // a driver's request
        #expect(SyscallStores.of(call("futex", [0x1000, 5, 0]), .value(0)) == .anywhere)  // FUTEX_WAKE_OP
        #expect(!SyscallStores.of(call("futex", [0x1000, 128, 0]), .value(0)).mayWrite(page: 0x1000))  // FUTEX_WAIT_PRIVATE
    }
}

/// What a syscall exit re-reads: its stores and the ranges it may have unmapped.
@Suite struct SyscallChangedRangesTests {
    static func call(_ name: String, _ args: [UInt64]) -> SyscallArguments {
        SyscallArguments(number: 0, name: name, values: args + [UInt64](repeating: 0, count: max(0, 6 - args.count)))
    }

    @Test func unmappingCallsNameTheirRange() {
        #expect(SyscallStores.changed(Self.call("munmap", [0x10000, 0x3000]), .value(0)) == .ranges([(0x10000, 0x3000)]))
        #expect(SyscallStores.changed(Self.call("madvise", [0x20000, 0x1000, 4]), .value(0)) == .ranges([(0x20000, 0x1000)]))
        // mmap without MAP_FIXED replaced nothing; with it, the range it returned.
        #expect(SyscallStores.changed(Self.call("mmap", [0, 0x2000, 3, 0x22]), .value(0x7000_0000)) == .ranges([]))
        #expect(SyscallStores.changed(Self.call("mmap", [0x40000, 0x2000, 3, 0x32]), .value(0x40000)) == .ranges([(0x40000, 0x2000)]))
        // brk does not say what it released: a full sweep.
        #expect(SyscallStores.changed(Self.call("brk", [0x50000]), .value(0x50000)) == .anywhere)
    }

    @Test func storesAndUnknownCallsStayAsTheyWere() {
        #expect(SyscallStores.changed(Self.call("read", [3, 0x9000, 100]), .value(10)) == .ranges([(0x9000, 10)]))
        #expect(SyscallStores.changed(Self.call("write", [1, 0x9000, 100]), .value(100)) == .ranges([]))
        #expect(SyscallStores.changed(Self.call("ioctl", [3, 0x5401, 0x9000]), .value(0)) == .ranges([(0x9000, 36)]))
        #expect(SyscallStores.changed(Self.call("ioctl", [3, 0x4020940d, 0x9000]), .value(0)) == .anywhere)
    }
}
