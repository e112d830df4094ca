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
