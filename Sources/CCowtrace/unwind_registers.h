// What the live unwinder (unwind.c) and the sample unwinder (sample_unwind.c) share: the
// x86-64 general registers as libunwind numbers them, read from a saved register set, and
// the accessors neither supports (floating-point registers, resuming the target), and the
// per-address-space unwind cache without libunwind's lock.
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

// libunwind's shared cache of unwind rules takes a lock around every frame, and its lock
// blocks every signal: two sigprocmask calls per frame, 500 per forked shell child. Debian's
// build has no thread-local cache: asked for UNW_CACHE_PER_THREAD it stores UNW_CACHE_GLOBAL,
// and its cache lookup then locks only for UNW_CACHE_GLOBAL; any other value but
// UNW_CACHE_NONE uses the same per-address-space cache without the lock. One thread unwinds
// each address space (the sample unwinder's: the reader, under the recorder's lock), so the
// lock guards nothing here. The policy is stored right after the
// accessors (the address space's first member); that layout and the mapping of the
// per-thread policy are checked through the public call before the value is stored, and
// anything unexpected (a build with a real thread-local cache, shared by every address
// space) keeps the locked global cache.
static inline void use_cache_without_lock(unw_addr_space_t space) {
    volatile int *policy = (volatile int *)(void *)((char *)space + sizeof(unw_accessors_t));
    unw_set_caching_policy(space, UNW_CACHE_NONE);
    int none = *policy == UNW_CACHE_NONE;
    unw_set_caching_policy(space, UNW_CACHE_GLOBAL);
    int global = *policy == UNW_CACHE_GLOBAL;
    unw_set_caching_policy(space, UNW_CACHE_PER_THREAD);
    int mapped = *policy == UNW_CACHE_GLOBAL;
    if (none && global && mapped) {
        *policy = UNW_CACHE_PER_THREAD;
    } else {
        unw_set_caching_policy(space, UNW_CACHE_GLOBAL);
    }
}

#endif
