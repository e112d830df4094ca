// A filter in front of the fault engine's perf page-fault events: a BPF program attached to
// each event (PERF_EVENT_IOC_SET_BPF) lets a fault through only if its page's bit is set in
// a bitmap the tracer shares with the kernel (an mmap'd BPF array). Since Linux 6.10 a BPF
// program that returns 0 suppresses every side effect of the sample, the sigtrap included,
// so a thread stops only at faults on pages that may be shared: first touches, text faults
// and stack growth run on without a ptrace stop. The bitmap is keyed by the page number
// modulo its size, so a fault on an unmarked page may be let through (a stop for nothing, as without
// the filter), never the other way round. On older kernels the program cannot hold the trap
// back and every fault stops, as without it.
#include "CCowtrace.h"
#include <errno.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <linux/perf_event.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FILTER_BYTES ((size_t)1 << (COW_FAULT_FILTER_BITS - 3))

struct cow_fault_filter {
    int map_fd;
    int prog_fd;
    uint64_t *bits;
    // Records per bit (calloc'd: pages never counted in stay untouched, not resident).
    uint32_t *counts;
};

static long bpf_call(int cmd, union bpf_attr *attr) { return syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

// The page number modulo 2^BITS: a fork marks runs of neighbouring pages, which then share
// cache lines of the counts and the bitmap (a multiplicative hash scattered them: a cache miss
// per page of an 84,000-page fork). Pages 4 GiB apart share a bit: a stop for nothing.
uint32_t cow_fault_filter_index(uint64_t page) {
    return (uint32_t)((page >> 12) & (((uint64_t)1 << COW_FAULT_FILTER_BITS) - 1));
}

cow_fault_filter *cow_fault_filter_create(void) {
    cow_fault_filter *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->map_fd = f->prog_fd = -1;
    f->counts = calloc((size_t)1 << COW_FAULT_FILTER_BITS, sizeof(uint32_t));
    if (!f->counts) goto fail;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = (uint32_t)FILTER_BYTES;
    attr.max_entries = 1;
    attr.map_flags = BPF_F_MMAPABLE;
    f->map_fd = (int)bpf_call(BPF_MAP_CREATE, &attr);
    if (f->map_fd < 0) goto fail;
    f->bits = mmap(NULL, FILTER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, f->map_fd, 0);
    if (f->bits == MAP_FAILED) {
        f->bits = NULL;
        goto fail;
    }
    // r0 = bit cow_fault_filter_index(ctx->addr & ~4095) of the bitmap (the map's one value).
    struct bpf_insn program[] = {
        {.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = 2, .src_reg = 1, .off = offsetof(struct bpf_perf_event_data, addr)},
        {.code = BPF_ALU64 | BPF_RSH | BPF_K, .dst_reg = 2, .imm = 12},
        {.code = BPF_ALU64 | BPF_AND | BPF_K, .dst_reg = 2, .imm = (1 << COW_FAULT_FILTER_BITS) - 1},
        {.code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 2},
        {.code = BPF_ALU64 | BPF_RSH | BPF_K, .dst_reg = 3, .imm = 6},
        {.code = BPF_ALU64 | BPF_LSH | BPF_K, .dst_reg = 3, .imm = 3},
        {.code = BPF_ALU64 | BPF_AND | BPF_K, .dst_reg = 2, .imm = 63},
        {.code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_VALUE, .imm = f->map_fd},
        {.imm = 0},
        {.code = BPF_ALU64 | BPF_ADD | BPF_X, .dst_reg = 1, .src_reg = 3},
        {.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = 0, .src_reg = 1, .off = 0},
        {.code = BPF_ALU64 | BPF_RSH | BPF_X, .dst_reg = 0, .src_reg = 2},
        {.code = BPF_ALU64 | BPF_AND | BPF_K, .dst_reg = 0, .imm = 1},
        {.code = BPF_JMP | BPF_EXIT},
    };
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_PERF_EVENT;
    attr.insns = (uint64_t)(uintptr_t)program;
    attr.insn_cnt = sizeof(program) / sizeof(program[0]);
    attr.license = (uint64_t)(uintptr_t)"GPL";
    f->prog_fd = (int)bpf_call(BPF_PROG_LOAD, &attr);
    if (f->prog_fd < 0) goto fail;
    return f;
fail:
    cow_fault_filter_destroy(f);
    return NULL;
}

void cow_fault_filter_destroy(cow_fault_filter *f) {
    if (!f) return;
    if (f->bits) munmap(f->bits, FILTER_BYTES);
    if (f->prog_fd >= 0) close(f->prog_fd);
    if (f->map_fd >= 0) close(f->map_fd);
    free(f->counts);
    free(f);
}

int cow_fault_filter_attach(cow_fault_filter *f, int event_fd) {
    return ioctl(event_fd, PERF_EVENT_IOC_SET_BPF, f->prog_fd);
}

void cow_fault_filter_add(cow_fault_filter *f, uint64_t page) {
    uint32_t i = cow_fault_filter_index(page);
    if (f->counts[i]++ == 0) f->bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

void cow_fault_filter_remove(cow_fault_filter *f, uint64_t page) {
    uint32_t i = cow_fault_filter_index(page);
    if (f->counts[i] == 0) return;
    if (--f->counts[i] == 0) f->bits[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

int cow_fault_filter_marked(const cow_fault_filter *f, uint64_t page) {
    uint32_t i = cow_fault_filter_index(page);
    return (int)((f->bits[i >> 6] >> (i & 63)) & 1);
}
