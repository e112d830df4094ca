// The C shim: everything Swift cannot call directly (variadic functions,
// function-like macros) and everything that must run between fork and exec.
// Every symbol carries the cow_ prefix.
#ifndef CCOWTRACE_H
#define CCOWTRACE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>
#include <signal.h>

// ---- ptrace -----------------------------------------------------------
// Returns the kernel's result, or -1 with errno set. `data` is a pointer or an integer.
long cow_ptrace(int request, pid_t pid, uintptr_t addr, uintptr_t data);
// PTRACE_PEEKDATA with unambiguous error reporting: 0 and *out set, or -1 with errno.
int cow_ptrace_peek(pid_t pid, uintptr_t addr, uint64_t *out);
int cow_ptrace_getregs(pid_t pid, struct user_regs_struct *regs);
int cow_ptrace_getsiginfo(pid_t pid, siginfo_t *info);

// PTRACE_GET_SYSCALL_INFO, flattened (the kernel struct has an anonymous union).
typedef struct {
    int op;                 // 0 none, 1 entry, 2 exit, 3 seccomp
    uint32_t arch;
    uint64_t instruction_pointer;
    uint64_t stack_pointer;
    uint64_t nr;
    uint64_t args[6];
    int64_t rval;
    int is_error;
} cow_syscall_info;
int cow_ptrace_syscall_info(pid_t pid, cow_syscall_info *out);

// PTRACE_GET_RSEQ_CONFIGURATION: the thread's registered rseq area.
typedef struct {
    uint64_t rseq_abi_pointer;
    uint32_t rseq_abi_size;
    uint32_t signature;
    uint32_t flags;
    uint32_t pad;
} cow_rseq_configuration;
int cow_ptrace_rseq_configuration(pid_t pid, cow_rseq_configuration *out);

// siginfo_t fields (a union in C).
int cow_siginfo_code(const siginfo_t *info);
uintptr_t cow_siginfo_addr(const siginfo_t *info);
pid_t cow_siginfo_pid(const siginfo_t *info);
uid_t cow_siginfo_uid(const siginfo_t *info);
int cow_siginfo_status(const siginfo_t *info);
long cow_siginfo_utime(const siginfo_t *info);
long cow_siginfo_stime(const siginfo_t *info);
uint64_t cow_siginfo_perf_data(const siginfo_t *info);
uint32_t cow_siginfo_perf_type(const siginfo_t *info);

// si_perf_flags: TRAP_PERF_FLAG_ASYNC (1) when SIGTRAP was blocked as the event fired, so
// the signal was queued and is delivered late (once the thread unblocks it).
uint32_t cow_siginfo_perf_flags(const siginfo_t *info);

// ---- signal masks and vector state --------------------------------------------
// PTRACE_GETSIGMASK / PTRACE_SETSIGMASK (bit N-1 for signal N).
int cow_ptrace_getsigmask(pid_t pid, uint64_t *mask);
int cow_ptrace_setsigmask(pid_t pid, uint64_t mask);

// The opmask and vector registers of a stopped thread, from PTRACE_GETREGSET NT_X86_XSTATE.
// zmm[i] holds the full register: xmm in bytes 0-15, the ymm upper half in 16-31, the zmm
// upper half in 32-63 (zeros where the CPU or the state lacks them).
typedef struct {
    uint64_t xstate_bv;
    uint64_t xcr0;
    uint64_t k[8];
    uint8_t zmm[32][64];
    int has_ymm;
    int has_avx512;
} cow_vector_state;
int cow_ptrace_vector_state(pid_t pid, cow_vector_state *out);
// CPUID leaf 0xD: the standard-format offset and size of XSAVE state component `component`.
int cow_xsave_component(int component, uint32_t *offset, uint32_t *size);
// Whether component `component` starts on a 64-byte boundary in the compacted format.
int cow_xsave_component_aligned(int component);
// XCR0: the state components the OS enabled (the same for every process on this machine).
uint64_t cow_xcr0(void);
// PERF_EVENT_IOC_ENABLE / PERF_EVENT_IOC_DISABLE.
int cow_perf_event_enable(int fd, int enable);
// ---- si_code values ------------------------------------------------------
// glibc declares TRAP_* only under feature macros this header cannot rely on when Swift
// imports it, and TRAP_PERF (Linux 5.13) only in the kernel's uapi header: checked against
// both with _Static_assert in signals.c.
enum {
    cow_TRAP_BRKPT = 1,
    cow_TRAP_TRACE = 2,
    cow_TRAP_PERF = 6,
};

// ---- wait status decoding (the W* macros) ------------------------------
int cow_wifexited(int status);
int cow_wexitstatus(int status);
int cow_wifsignaled(int status);
int cow_wtermsig(int status);
int cow_wcoredump(int status);
int cow_wifstopped(int status);
int cow_wstopsig(int status);
int cow_wifcontinued(int status);
extern const int cow_WALL;

// ---- raw syscalls ------------------------------------------------------
pid_t cow_gettid(void);
int cow_tgkill(pid_t tgid, pid_t tid, int sig);
// A PERF_COUNT_SW_PAGE_FAULTS event on thread `tid`, sample_period 1, sigtrap with `cookie`
// in si_perf_data, remove_on_exec. Returns the fd, or -1 with errno set. `disabled` opens it
// stopped (a capability probe).
long cow_perf_event_open_pagefaults(pid_t tid, uint64_t cookie, int exclude_kernel, int disabled);

// The fault filter (fault_filter.c): a BPF program on each page-fault event lets a fault stop
// the thread only if its page's bit is set in a bitmap shared with the kernel (Linux 6.10+
// suppresses the sigtrap of a sample the program drops). NULL where BPF is not allowed.
#define COW_FAULT_FILTER_BITS 20
typedef struct cow_fault_filter cow_fault_filter;
cow_fault_filter *cow_fault_filter_create(void);
void cow_fault_filter_destroy(cow_fault_filter *filter);
// PERF_EVENT_IOC_SET_BPF: 0, or -1 with errno set.
int cow_fault_filter_attach(cow_fault_filter *filter, int event_fd);
// A record of `page` added to or removed from the ledger: a page's bit is set while any
// page hashed to it has a record.
void cow_fault_filter_add(cow_fault_filter *filter, uint64_t page);
void cow_fault_filter_remove(cow_fault_filter *filter, uint64_t page);
int cow_fault_filter_marked(const cow_fault_filter *filter, uint64_t page);
uint32_t cow_fault_filter_index(uint64_t page);

// ---- PAGEMAP_SCAN (Linux 6.7+) --------------------------------------------
// struct page_region: [start, end) with the categories asked for.
typedef struct {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
} cow_page_region;
// The present pages of [start, end) in the process whose /proc/PID/pagemap is `fd`, as up to
// `count` ranges. Returns how many were filled (or -1 with errno: ENOTTY/EINVAL before 6.7);
// *walk_end is where the walk stopped (end, or earlier when `regions` filled up).
long cow_pagemap_scan_present(int fd, uint64_t start, uint64_t end, cow_page_region *regions, uint64_t count,
                              uint64_t *walk_end);

// ---- launching a traced program ------------------------------------------
// fork; in the child: the signal dispositions and mask cowtrace inherited (recorded before
// main), SIGSTOP to itself, then, once the tracer has seized and continued it,
// execve(path, argv, envp). Nothing but async-signal-safe calls run in the child. If execve
// fails the child writes its errno to a close-on-exec pipe and exits 127; *error_fd receives
// the pipe's read end. `new_session` runs it in a session of its own (setsid), for programs
// left stopped at a break. Returns the child's pid, or -1 with errno set.
pid_t cow_spawn_traced(const char *path, char *const argv[], char *const envp[], int new_session, int *error_fd);

// ---- remote unwinding (libunwind-ptrace) --------------------------------
// One address space per address-space layout (a process and the children it forks share
// one until their mappings change).
typedef struct cow_unwinder cow_unwinder;
typedef struct {
    uint64_t ip;
    uint64_t sp;
    uint64_t offset;
    int has_name;
    char name[256];
} cow_frame;
cow_unwinder *cow_unwinder_create(void);
void cow_unwinder_destroy(cow_unwinder *unwinder);
void cow_unwinder_flush(cow_unwinder *unwinder);
// Unwinds thread `tid` as if its registers were `regs`; fills up to `max` frames and returns
// how many (frame 0 is regs->rip), or -1. `modules` holds `module_count` [start, end) pairs:
// the process's executable mappings (each gets its own cached ELF image).
// `constant` holds `constant_count` [start, end) pairs of memory that cannot change while the
// mappings stay as they are (read-only file mappings: code, .eh_frame): words read there need
// no re-reading when a previous unwind is checked for reuse.
int cow_unwind(cow_unwinder *unwinder, pid_t tid, const struct user_regs_struct *regs, const uint64_t *modules,
               int module_count, const uint64_t *constant, int constant_count, cow_frame *frames, int max);
// The thread is gone: drop its memory descriptor.
void cow_unwinder_forget_thread(cow_unwinder *unwinder, pid_t tid);

// ---- the record engine: perf ring buffers, drained while the program runs ------------
// Write faults of traced threads come from perf ring buffers (one per CPU, mmap'd once, each
// taking every traced thread's events on that CPU):
// as root the tracepoints exceptions:page_fault_user/page_fault_kernel filtered in the
// kernel to writes on present pages, otherwise software page-fault samples with
// exclude_kernel. Each sample carries the user registers and a copy of the top of the user
// stack; it is unwound as soon as it is drained (libunwind over that copy and the mapped
// ELF files), so only a compact record is kept. A reader thread drains the buffers while
// the tracer waits; the tracer drains them too before it looks at the records.
#define COW_SAMPLE_FRAMES 32
typedef struct {
    uint64_t time;          // CLOCK_MONOTONIC, nanoseconds
    uint64_t address;       // the faulting address
    uint64_t error_code;    // x86 page-fault error code; UINT64_MAX when unknown (software event)
    int32_t pid, tid;
    int32_t kernel;         // 0 a user-mode fault, 1 the kernel's own store (page_fault_kernel),
                            // 2 a syscall entry (raw_syscalls:sys_enter: `address` is its number)
    int32_t frame_count;    // 0: not unwound
    struct user_regs_struct regs;  // fs_base/gs_base are not sampled (0)
    uint64_t frames[COW_SAMPLE_FRAMES];
    // Kernel samples: the kernel call chain (which syscall, rseq, signal delivery stored).
    int32_t kernel_frame_count;
    int32_t pad;
    uint64_t kernel_frames[COW_SAMPLE_FRAMES];
    uint64_t args[6];       // syscall entries: the arguments
} cow_sample;

typedef struct cow_recorder cow_recorder;
// `tracepoint_user`/`tracepoint_kernel`: tracepoint ids, or 0 for software page-fault samples.
// `tracepoint_syscalls`: raw_syscalls:sys_enter's id to record the entries of the mapping
// calls (mmap, munmap, mremap, madvise) and the kernel call chain of kernel faults, or 0.
cow_recorder *cow_recorder_create(int buffer_pages, int stack_bytes, uint64_t tracepoint_user, uint64_t tracepoint_kernel,
                                  uint64_t tracepoint_syscalls);
void cow_recorder_destroy(cow_recorder *recorder);
// Starts the reader thread. Returns 0 or an errno value.
int cow_recorder_start(cow_recorder *recorder);
// Opens the thread's events (the first call maps the buffers). Returns 0 or -1 with errno set.
int cow_recorder_add_thread(cow_recorder *recorder, pid_t tid);
int cow_recorder_has_thread(cow_recorder *recorder, pid_t tid);
// Drains, counts its losses and closes the thread's events.
void cow_recorder_remove_thread(cow_recorder *recorder, pid_t tid);
// The process's mappings changed (mmap, exec): re-read them before unwinding its next sample.
void cow_recorder_maps_changed(cow_recorder *recorder, pid_t pid);
// Drains every buffer, then hands over the records of samples taken before the call (in
// drain order; later ones wait for the next call) in a malloc'd array the caller frees;
// *count receives their number.
cow_sample *cow_recorder_take(cow_recorder *recorder, size_t *count);
// Samples the kernel could not write (full buffers), as counted so far: PERF_RECORD_LOST
// records and the events' own counts (PERF_FORMAT_LOST), whichever is larger.
uint64_t cow_recorder_lost(cow_recorder *recorder);
// The tracer is about to block in waitpid: while it waits, the reader interrupts it (SIGURG,
// no SA_RESTART: waitpid returns EINTR) once samples are waiting, so they are replayed while
// the program runs rather than all at its next stop. Call from the tracer's thread.
void cow_recorder_waiting(cow_recorder *recorder);
// Samples drained so far.
uint64_t cow_recorder_samples(cow_recorder *recorder);
// Raises the calling thread's priority by `steps` nice levels (to -20 at most): root only.
// Returns 0 or -1 with errno set.
int cow_raise_priority(int steps);
// Mounts tracefs at /sys/kernel/tracing if it is not there. Returns 0 or -1 with errno set.
int cow_mount_tracefs(void);

// ---- a file read on a thread of its own (background_read.c) ---------------------------
typedef struct cow_background_read cow_background_read;
// Starts reading the whole file; NULL when the thread could not start.
cow_background_read *cow_background_read_start(const char *path);
// Waits for the read; returns the bytes (malloc'd, the caller frees them; NULL when
// unreadable) and their count. Frees `read`.
unsigned char *cow_background_read_finish(cow_background_read *read, size_t *size);

// ---- interruption (Ctrl-C and friends) -------------------------------------
// Installs handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE that only record the
// signal, without SA_RESTART, so a blocking waitpid returns EINTR.
void cow_install_interrupt_handlers(void);
// The last interrupting signal received, or 0.
int cow_interrupt_signal(void);
// How many interrupting signals have been received.
int cow_interrupt_count(void);
// Whether the last one came from the terminal (si_code SI_KERNEL: Ctrl-C, Ctrl-\), which
// sent it to the whole foreground process group.
int cow_interrupt_from_terminal(void);

// ---- periodic tick (log flushing, live status line) ---------------------------
// Starts a SIGALRM every interval_ms (interrupting waitpid); 0 or -1 with errno.
int cow_tick_start(long interval_ms);
int cow_tick_stop(void);
// 1 once per tick that happened since the last call, else 0.
int cow_tick_take(void);

// ---- the guardian -----------------------------------------------------------
// Forks: the parent (the process the user sees) forwards interrupting signals to the child
// and exits as the child does, never returning; the child returns 0 and traces, and gets
// SIGHUP (an interruption: it lets go cleanly) if the parent is killed. -1 if fork failed.
int cow_run_guarded(void);
// In the tracing child: the guardian's pid (0 when unguarded).
pid_t cow_guardian(void);

#endif
