// Remote unwinding with libunwind-ptrace, started from registers we saved (the state before
// a single step), not the tracee's live registers. Memory is read with PTRACE_PEEKDATA by
// libunwind's own accessor, which does not copy shared pages.
#include "CCowtrace.h"
#include <libunwind-ptrace.h>
#include <stdlib.h>
#include <string.h>

struct cow_unwinder {
    unw_addr_space_t space;
    // The last thread's _UPT handle: it caches the ELF image of the last lookup.
    void *upt;
    pid_t upt_tid;
};

// libunwind-ptrace's own routines call the address space's accessors back with the _UPT
// handle as `arg`, so `arg` cannot carry our registers: they are in this thread-local for the
// duration of one cow_unwind call.
static _Thread_local const struct user_regs_struct *saved_regs;

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg) {
    const struct user_regs_struct *r = saved_regs;
    if (write || !r) return write ? -UNW_EREADONLYREG : _UPT_access_reg(as, reg, val, write, arg);
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

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg) {
    if (write) return -UNW_EINVAL;  // never write into the tracee
    return _UPT_access_mem(as, addr, val, 0, arg);
}
static int access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg) {
    (void)as; (void)reg; (void)val; (void)write; (void)arg;
    return -UNW_EBADREG;
}
static int resume(unw_addr_space_t as, unw_cursor_t *c, void *arg) {
    (void)as; (void)c; (void)arg;
    return -UNW_EINVAL;
}

static unw_accessors_t accessors = {
    _UPT_find_proc_info, _UPT_put_unwind_info, _UPT_get_dyn_info_list_addr, access_mem, access_reg, access_fpreg, resume,
    _UPT_get_proc_name,
};

cow_unwinder *cow_unwinder_create(void) {
    cow_unwinder *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    u->space = unw_create_addr_space(&accessors, 0);
    if (!u->space) {
        free(u);
        return NULL;
    }
    unw_set_caching_policy(u->space, UNW_CACHE_GLOBAL);
    return u;
}

void cow_unwinder_destroy(cow_unwinder *u) {
    if (!u) return;
    if (u->upt) _UPT_destroy(u->upt);
    unw_destroy_addr_space(u->space);
    free(u);
}

void cow_unwinder_flush(cow_unwinder *u) {
    unw_flush_cache(u->space, 0, 0);
    if (u->upt) _UPT_destroy(u->upt);
    u->upt = NULL;
}

int cow_unwind(cow_unwinder *u, pid_t tid, const struct user_regs_struct *regs, cow_frame *frames, int max) {
    if (!u->upt || u->upt_tid != tid) {
        if (u->upt) _UPT_destroy(u->upt);
        u->upt = _UPT_create(tid);
        u->upt_tid = tid;
    }
    if (!u->upt) return -1;
    saved_regs = regs;
    unw_cursor_t cursor;
    int n = 0;
    if (unw_init_remote(&cursor, u->space, u->upt) == 0) {
        do {
            unw_word_t ip = 0, sp = 0, off = 0;
            unw_get_reg(&cursor, UNW_REG_IP, &ip);
            unw_get_reg(&cursor, UNW_REG_SP, &sp);
            cow_frame *f = &frames[n];
            memset(f, 0, sizeof(*f));
            f->ip = ip;
            f->sp = sp;
            if (unw_get_proc_name(&cursor, f->name, sizeof(f->name), &off) == 0) {
                f->has_name = 1;
                f->offset = off;
            }
            n++;
            if (ip == 0) break;
        } while (n < max && unw_step(&cursor) > 0);
    }
    saved_regs = NULL;
    return n;
}
