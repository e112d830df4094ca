// What the live unwinder (unwind.c) and the sample unwinder (sample_unwind.c) share: the
// x86-64 general registers as libunwind numbers them, read from a saved register set, and
// the accessors neither supports (floating-point registers, resuming the target).
// Not in include/: Swift does not see it.
#ifndef COW_UNWIND_REGISTERS_H
#define COW_UNWIND_REGISTERS_H

#include <sys/user.h>

static inline int register_value(const struct user_regs_struct *r, unw_regnum_t reg, unw_word_t *val) {
    switch (reg) {
    case UNW_X86_64_RAX: *val = r->rax; break;
    case UNW_X86_64_RDX: *val = r->rdx; break;
    case UNW_X86_64_RCX: *val = r->rcx; break;
    case UNW_X86_64_RBX: *val = r->rbx; break;
    case UNW_X86_64_RSI: *val = r->rsi; break;
    case UNW_X86_64_RDI: *val = r->rdi; break;
    case UNW_X86_64_RBP: *val = r->rbp; break;
    case UNW_X86_64_RSP: *val = r->rsp; break;
    case UNW_X86_64_R8: *val = r->r8; break;
    case UNW_X86_64_R9: *val = r->r9; break;
    case UNW_X86_64_R10: *val = r->r10; break;
    case UNW_X86_64_R11: *val = r->r11; break;
    case UNW_X86_64_R12: *val = r->r12; break;
    case UNW_X86_64_R13: *val = r->r13; break;
    case UNW_X86_64_R14: *val = r->r14; break;
    case UNW_X86_64_R15: *val = r->r15; break;
    case UNW_X86_64_RIP: *val = r->rip; break;
    default: return -UNW_EBADREG;
    }
    return 0;
}

static inline int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg) {
    (void)as; (void)reg; (void)val; (void)write; (void)arg;
    return -UNW_EBADREG;
}

static inline int resume(unw_addr_space_t as, unw_cursor_t *cursor, void *arg) {
    (void)as; (void)cursor; (void)arg;
    return -UNW_EINVAL;
}

#endif
