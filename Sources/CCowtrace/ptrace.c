#ifndef _GNU_SOURCE
#error "CCowtrace is built with _GNU_SOURCE"
#endif
#include "CCowtrace.h"
#include <errno.h>
#include <stddef.h>
#include <sys/ptrace.h>

long cow_ptrace(int request, pid_t pid, uintptr_t addr, uintptr_t data) {
    return ptrace((enum __ptrace_request)request, pid, (void *)addr, (void *)data);
}

int cow_ptrace_peek(pid_t pid, uintptr_t addr, uint64_t *out) {
    errno = 0;
    long word = ptrace(PTRACE_PEEKDATA, pid, (void *)addr, NULL);
    if (word == -1 && errno != 0) return -1;
    *out = (uint64_t)word;
    return 0;
}

int cow_ptrace_getregs(pid_t pid, struct user_regs_struct *regs) {
    return (int)ptrace(PTRACE_GETREGS, pid, NULL, regs);
}

int cow_ptrace_getsiginfo(pid_t pid, siginfo_t *info) {
    return (int)ptrace(PTRACE_GETSIGINFO, pid, NULL, info);
}

_Static_assert(offsetof(struct __ptrace_syscall_info, entry) == 24, "ptrace_syscall_info layout");

int cow_ptrace_syscall_info(pid_t pid, cow_syscall_info *out) {
    struct __ptrace_syscall_info info;
    long n = ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(info), &info);
    if (n < 0) return -1;
    out->op = info.op;
    out->arch = info.arch;
    out->instruction_pointer = info.instruction_pointer;
    out->stack_pointer = info.stack_pointer;
    out->nr = 0;
    out->rval = 0;
    out->is_error = 0;
    for (int i = 0; i < 6; i++) out->args[i] = 0;
    if (info.op == PTRACE_SYSCALL_INFO_ENTRY) {
        out->nr = info.entry.nr;
        for (int i = 0; i < 6; i++) out->args[i] = info.entry.args[i];
    } else if (info.op == PTRACE_SYSCALL_INFO_EXIT) {
        out->rval = info.exit.rval;
        out->is_error = info.exit.is_error;
    } else if (info.op == PTRACE_SYSCALL_INFO_SECCOMP) {
        out->nr = info.seccomp.nr;
        for (int i = 0; i < 6; i++) out->args[i] = info.seccomp.args[i];
    }
    return 0;
}

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

int cow_ptrace_rseq_configuration(pid_t pid, cow_rseq_configuration *out) {
    long n = ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid,
                    (void *)sizeof(*out), out);
    return n < 0 ? -1 : 0;
}

int cow_siginfo_code(const siginfo_t *info) { return info->si_code; }
uintptr_t cow_siginfo_addr(const siginfo_t *info) { return (uintptr_t)info->si_addr; }
pid_t cow_siginfo_pid(const siginfo_t *info) { return info->si_pid; }
uid_t cow_siginfo_uid(const siginfo_t *info) { return info->si_uid; }
int cow_siginfo_status(const siginfo_t *info) { return info->si_status; }
long cow_siginfo_utime(const siginfo_t *info) { return (long)info->si_utime; }
long cow_siginfo_stime(const siginfo_t *info) { return (long)info->si_stime; }

// glibc 2.36 lacks the perf member of the fault union. The kernel's _sigfault is
// { void *_addr; union { short _addr_lsb; ...; struct { unsigned long _data; u32 _type; u32 _flags; } _perf; } },
// so _perf starts right after the address.
uint64_t cow_siginfo_perf_data(const siginfo_t *info) {
    const unsigned char *fault = (const unsigned char *)info + offsetof(siginfo_t, si_addr);
    return *(const uint64_t *)(fault + sizeof(void *));
}
uint32_t cow_siginfo_perf_type(const siginfo_t *info) {
    const unsigned char *fault = (const unsigned char *)info + offsetof(siginfo_t, si_addr);
    return *(const uint32_t *)(fault + sizeof(void *) + sizeof(unsigned long));
}
// The kernel's _sigfault with its _perf member, from si_addr on (include/uapi/asm-generic/siginfo.h).
struct cow_sigfault_perf {
    void *addr;
    unsigned long data;
    uint32_t type;
    uint32_t flags;
};
_Static_assert(offsetof(struct cow_sigfault_perf, data) == 8 && offsetof(struct cow_sigfault_perf, flags) == 20,
               "_sigfault._perf layout");
_Static_assert(offsetof(siginfo_t, si_addr) + sizeof(struct cow_sigfault_perf) <= sizeof(siginfo_t), "siginfo_t room");

uint32_t cow_siginfo_perf_flags(const siginfo_t *info) {
    const unsigned char *fault = (const unsigned char *)info + offsetof(siginfo_t, si_addr);
    return ((const struct cow_sigfault_perf *)fault)->flags;
}
