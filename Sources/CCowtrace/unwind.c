// Remote unwinding with libunwind-ptrace, started from registers we saved (the state before
// a single step), not the tracee's live registers. Memory is read through /proc/TID/mem
// (or PTRACE_PEEKDATA by libunwind's own accessor), neither of which copies shared pages.
#include <stddef.h>
#include <stdint.h>
#include "CCowtrace.h"
#include <libunwind-ptrace.h>
#include "unwind_registers.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/ptrace.h>

// A _UPT handle caches the ELF image of its last lookup only, and re-reads /proc/PID/maps
// and maps the file again whenever a lookup falls in another module. A backtrace crosses
// modules at every frame or two, so each module gets a handle of its own. An unwinder serves
// one address-space layout (the processes mapping the same files at the same addresses: a
// parent and its forked children), so a handle made for one thread serves every thread and
// process using this unwinder: it is asked only about addresses of its module, which its
// cached unwind table covers; memory is read from the thread being unwound (mem_fd, or
// PTRACE_PEEKDATA on that thread), never through the handle's own pid.
#define SLOTS 64
struct slot {
    pid_t tid;
    uint64_t start, end;
    void *upt;
};

#define MEMO_REGS 32
#define MEMO_WORDS 256
#define MEMO_FRAMES 64
struct memo {
    int valid, overflow;
    uint64_t rip;
    int nregs, nwords, nframes;
    int regnums[MEMO_REGS];
    unw_word_t regvals[MEMO_REGS];
    uint64_t addrs[MEMO_WORDS];
    unw_word_t words[MEMO_WORDS];
    unsigned char fixed[MEMO_WORDS];  // in constant code: not re-read
    cow_frame frames[MEMO_FRAMES];
};

struct cow_unwinder {
    unw_addr_space_t space;
    struct slot slots[SLOTS];
    int next;  // round-robin replacement
    // /proc/TID/mem of the thread being unwound, and the page last read from it: one pread
    // serves a frame's many word reads (PTRACE_PEEKDATA costs a syscall per word).
    int mem_fd;
    pid_t mem_tid;
    // The threads unwound lately keep their /proc/TID/mem open: a parent and its forked
    // child splitting pages in turn would otherwise reopen it at every backtrace.
    struct { pid_t tid; int fd; } mems[4];
    int mem_next;
    uint64_t page_address;
    int page_valid;
    unsigned char page[4096];
    // The last unwind, with every register and memory word it read: the same inputs give the
    // same frames, so a loop that copies page after page from one place is unwound once and
    // then only checked (libunwind's own cache locks with two sigprocmask calls per frame).
    struct memo memo, scratch;
    int recording;
};

// The modules (executable mappings) of the current cow_unwind call.
static _Thread_local const uint64_t *current_modules;
static _Thread_local int current_module_count;
static _Thread_local cow_unwinder *current_unwinder;
static _Thread_local const uint64_t *current_constant;
static _Thread_local int current_constant_count;
static _Thread_local pid_t current_tid;

static void *handle_for(uint64_t ip, void *fallback) {
    cow_unwinder *u = current_unwinder;
    if (!u) return fallback;
    for (int i = 0; i < current_module_count; i++) {
        uint64_t start = current_modules[2 * i], end = current_modules[2 * i + 1];
        if (ip < start || ip >= end) continue;
        for (int k = 0; k < SLOTS; k++) {
            struct slot *s = &u->slots[k];
            if (s->upt && s->start == start && s->end == end) return s->upt;
        }
        struct slot *s = &u->slots[u->next];
        u->next = (u->next + 1) % SLOTS;
        if (s->upt) _UPT_destroy(s->upt);
        s->upt = _UPT_create(current_tid);
        s->tid = current_tid;
        s->start = start;
        s->end = end;
        return s->upt ? s->upt : fallback;
    }
    return fallback;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need, void *arg) {
    return _UPT_find_proc_info(as, ip, pi, need, handle_for(ip, arg));
}

// libunwind-ptrace's own routines call the address space's accessors back with the _UPT
// handle as `arg`, so `arg` cannot carry our registers: they are in this thread-local for the
// duration of one cow_unwind call.
static _Thread_local const struct user_regs_struct *saved_regs;


static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg) {
    const struct user_regs_struct *r = saved_regs;
    if (write || !r) return write ? -UNW_EREADONLYREG : _UPT_access_reg(as, reg, val, write, arg);
    int rc = register_value(r, reg, val);
    cow_unwinder *u = current_unwinder;
    if (rc == 0 && u && u->recording) {
        struct memo *m = &u->scratch;
        if (m->nregs < MEMO_REGS) {
            m->regnums[m->nregs] = reg;
            m->regvals[m->nregs++] = *val;
        } else {
            m->overflow = 1;
        }
    }
    return rc;
}


// One word of the tracee's memory through /proc/TID/mem, a page at a time.
static int read_word(cow_unwinder *u, uint64_t addr, unw_word_t *val) {
    if (!u || u->mem_fd < 0) return -1;
    uint64_t base = addr & ~(uint64_t)4095;
    if ((addr & 4095) <= 4096 - sizeof(*val)) {
        if (!u->page_valid || u->page_address != base) {
            u->page_valid = pread(u->mem_fd, u->page, sizeof(u->page), (off_t)base) == (ssize_t)sizeof(u->page);
            u->page_address = base;
        }
        if (!u->page_valid) return -1;
        memcpy(val, u->page + (addr & 4095), sizeof(*val));
        return 0;
    }
    return pread(u->mem_fd, val, sizeof(*val), (off_t)addr) == (ssize_t)sizeof(*val) ? 0 : -1;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg) {
    if (write) return -UNW_EINVAL;  // never write into the tracee
    cow_unwinder *u = current_unwinder;
    (void)as;
    (void)arg;
    int rc = read_word(u, addr, val);
    if (rc != 0) {
        errno = 0;
        long word = ptrace(PTRACE_PEEKDATA, current_tid, (void *)(uintptr_t)addr, NULL);
        rc = errno == 0 ? 0 : -UNW_EINVAL;
        if (rc == 0) *val = (unw_word_t)word;
    }
    if (rc == 0 && u && u->recording) {
        struct memo *m = &u->scratch;
        if (m->nwords < MEMO_WORDS) {
            unsigned char fixed = 0;
            for (int i = 0; i < current_constant_count; i++) {
                if (addr >= current_constant[2 * i] && addr + sizeof(*val) <= current_constant[2 * i + 1]) fixed = 1;
            }
            m->fixed[m->nwords] = fixed;
            m->addrs[m->nwords] = addr;
            m->words[m->nwords++] = *val;
        } else {
            m->overflow = 1;
        }
    }
    return rc;
}

// Whether the last unwind's inputs are unchanged: the same instruction, registers and words.
static int memo_holds(cow_unwinder *u, const struct user_regs_struct *regs) {
    struct memo *m = &u->memo;
    if (!m->valid || m->rip != regs->rip) return 0;
    for (int i = 0; i < m->nregs; i++) {
        unw_word_t v;
        if (register_value(regs, m->regnums[i], &v) != 0 || v != m->regvals[i]) return 0;
    }
    // The words that can change usually lie within a few KiB of stack: one pread of their span.
    uint64_t low = UINT64_MAX, high = 0;
    for (int i = 0; i < m->nwords; i++) {
        if (m->fixed[i]) continue;
        if (m->addrs[i] < low) low = m->addrs[i];
        if (m->addrs[i] > high) high = m->addrs[i];
    }
    if (low == UINT64_MAX) return 1;
    static _Thread_local unsigned char span[16384];
    if (high - low + sizeof(unw_word_t) <= sizeof(span) && u->mem_fd >= 0) {
        size_t length = (size_t)(high - low) + sizeof(unw_word_t);
        if (pread(u->mem_fd, span, length, (off_t)low) != (ssize_t)length) return 0;
        for (int i = 0; i < m->nwords; i++) {
            if (m->fixed[i]) continue;
            unw_word_t v;
            memcpy(&v, span + (m->addrs[i] - low), sizeof(v));
            if (v != m->words[i]) return 0;
        }
        return 1;
    }
    for (int i = 0; i < m->nwords; i++) {
        unw_word_t v;
        if (m->fixed[i]) continue;
        if (read_word(u, m->addrs[i], &v) != 0 || v != m->words[i]) return 0;
    }
    return 1;
}
static unw_accessors_t accessors = {
    find_proc_info, _UPT_put_unwind_info, _UPT_get_dyn_info_list_addr, access_mem, access_reg, access_fpreg, resume,
    _UPT_get_proc_name,
};

cow_unwinder *cow_unwinder_create(void) {
    cow_unwinder *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    u->mem_fd = -1;
    for (int i = 0; i < 4; i++) u->mems[i].fd = -1;
    u->space = unw_create_addr_space(&accessors, 0);
    if (!u->space) {
        free(u);
        return NULL;
    }
    use_cache_without_lock(u->space);
    return u;
}

void cow_unwinder_destroy(cow_unwinder *u) {
    if (!u) return;
    cow_unwinder_flush(u);
    unw_destroy_addr_space(u->space);
    free(u);
}

void cow_unwinder_flush(cow_unwinder *u) {
    unw_flush_cache(u->space, 0, 0);
    for (int i = 0; i < 4; i++) {
        if (u->mems[i].fd >= 0) close(u->mems[i].fd);
        u->mems[i].fd = -1;
        u->mems[i].tid = 0;
    }
    u->mem_fd = -1;
    u->mem_tid = 0;
    u->page_valid = 0;
    u->memo.valid = 0;
    for (int k = 0; k < SLOTS; k++) {
        if (u->slots[k].upt) _UPT_destroy(u->slots[k].upt);
        u->slots[k].upt = NULL;
    }
}

void cow_unwinder_forget_thread(cow_unwinder *u, pid_t tid) {
    // The module handles serve every thread of the layout; only the thread's memory goes.
    for (int i = 0; i < 4; i++) {
        if (u->mems[i].tid != tid || u->mems[i].fd < 0) continue;
        close(u->mems[i].fd);
        u->mems[i].fd = -1;
        u->mems[i].tid = 0;
    }
    if (u->mem_tid == tid) {
        u->mem_fd = -1;
        u->mem_tid = 0;
    }
}

// The thread's /proc/TID/mem, from the few kept open or opened now (the oldest closed).
static void use_thread_memory(cow_unwinder *u, pid_t tid) {
    u->mem_tid = tid;
    for (int i = 0; i < 4; i++) {
        if (u->mems[i].tid == tid && u->mems[i].fd >= 0) {
            u->mem_fd = u->mems[i].fd;
            return;
        }
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    u->mem_fd = fd;
    if (fd < 0) return;
    int slot = u->mem_next;
    u->mem_next = (u->mem_next + 1) % 4;
    if (u->mems[slot].fd >= 0) close(u->mems[slot].fd);
    u->mems[slot].tid = tid;
    u->mems[slot].fd = fd;
}

int cow_unwind(cow_unwinder *u, pid_t tid, const struct user_regs_struct *regs, const uint64_t *modules,
               int module_count, const uint64_t *constant, int constant_count, cow_frame *frames, int max) {
    current_unwinder = u;
    current_tid = tid;
    u->page_valid = 0;  // the stack changes between calls
    if (u->mem_tid != tid || u->mem_fd < 0) use_thread_memory(u, tid);
    if (memo_holds(u, regs)) {
        int n = u->memo.nframes < max ? u->memo.nframes : max;
        memcpy(frames, u->memo.frames, (size_t)n * sizeof(cow_frame));
        current_unwinder = NULL;
        return n;
    }
    memset(&u->scratch, 0, offsetof(struct memo, regnums));
    u->scratch.rip = regs->rip;
    u->recording = 1;
    current_constant = constant;
    current_constant_count = constant_count;
    current_modules = modules;
    current_module_count = module_count;
    saved_regs = regs;
    // The cursor's own handle: any module's will do for register and memory access.
    void *main_handle = handle_for(regs->rip, NULL);
    if (!main_handle) main_handle = handle_for(modules && module_count ? modules[0] : 0, NULL);
    unw_cursor_t cursor;
    int n = 0;
    void *own = NULL;
    if (!main_handle) main_handle = own = _UPT_create(tid);
    if (main_handle && unw_init_remote(&cursor, u->space, main_handle) == 0) {
        do {
            unw_word_t ip = 0, sp = 0, off = 0;
            unw_get_reg(&cursor, UNW_REG_IP, &ip);
            unw_get_reg(&cursor, UNW_REG_SP, &sp);
            cow_frame *f = &frames[n];
            memset(f, 0, sizeof(*f));
            f->ip = ip;
            f->sp = sp;
            // No unw_get_proc_name: _UPT_get_proc_name re-reads /proc/PID/maps and maps the
            // ELF file on every call. Names come from libdw, which caches per module.
            (void)off;
            n++;
            if (ip == 0) break;
        } while (n < max && unw_step(&cursor) > 0);
    }
    if (own) _UPT_destroy(own);
    u->recording = 0;
    current_constant = NULL;
    current_constant_count = 0;
    if (!u->scratch.overflow && n > 0 && n <= MEMO_FRAMES) {
        u->scratch.nframes = n;
        memcpy(u->scratch.frames, frames, (size_t)n * sizeof(cow_frame));
        u->scratch.valid = 1;
        u->memo = u->scratch;
    } else {
        u->memo.valid = 0;
    }
    saved_regs = NULL;
    current_unwinder = NULL;
    current_modules = NULL;
    return n;
}
