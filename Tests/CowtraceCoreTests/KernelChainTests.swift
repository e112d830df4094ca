import Testing
@testable import CowtraceCore

/// The record engine names the kernel's store without a syscall stop from the kernel call
/// chain of its fault (innermost first, as perf records it).
struct KernelChainTests {
    @Test func readThroughKsysRead() {
        let chain = ["exc_page_fault", "asm_exc_page_fault", "_copy_to_iter", "copy_page_to_iter", "anon_pipe_read", "vfs_read",
                     "ksys_read", "do_syscall_64", "entry_SYSCALL_64_after_hwframe"]
        let call = RecordEngine.syscallName(kernelChain: chain)
        #expect(call?.name == "read" && call?.function == "ksys_read")
    }

    @Test func pastTheDispatcher() {
        let chain = ["exc_page_fault", "__put_user_8", "__x64_sys_pread64", "x64_sys_call", "do_syscall_64"]
        #expect(RecordEngine.syscallName(kernelChain: chain)?.name == "pread64")
    }

    @Test func outsideAnySyscall() {
        let chain = ["exc_page_fault", "asm_exc_page_fault", "__put_user_8", "__rseq_handle_notify_resume", "exit_to_user_mode_loop",
                     "ret_from_fork", "ret_from_fork_asm"]
        #expect(RecordEngine.syscallName(kernelChain: chain) == nil)
        #expect(RecordEngine.syscallName(kernelChain: ["do_syscall_64"]) == nil)
    }
}

/// /proc/kallsyms parsed as bytes: text symbols only, looked up by address.
struct KernelSymbolsTests {
    @Test func textSymbolsByAddress() {
        let text = "ffffffff81000000 T _stext\nffffffff81000100 D some_data\nffffffff81000200 t local_fn\nffffffff81000300 T mod_fn\t[ext4]\n"
        let parsed = KernelSymbols.parse(Array(text.utf8))
        #expect(parsed.map(\.address) == [0xffffffff81000000, 0xffffffff81000200, 0xffffffff81000300])
    }

    @Test func realKallsymsNamesAKnownFunction() throws {
        let symbols = KernelSymbols()
        // Whatever the kernel, do_syscall_64 is a text symbol: its own address names it.
        let line = try #require(String(decoding: (try? readWholeFile("/proc/kallsyms")) ?? [], as: UTF8.self)
            .split(separator: "\n").first { $0.hasSuffix(" T do_syscall_64") })
        let address = try #require(UInt64(line.prefix(16), radix: 16))
        if address != 0 { #expect(symbols.name(at: address) == "do_syscall_64") }
    }
}
