#ifndef _GNU_SOURCE
#error "CCowtrace is built with _GNU_SOURCE"
#endif
#include "CCowtrace.h"
#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif

_Static_assert(sizeof(((cow_vector_state *)0)->k) == 64, "k0-k7");
_Static_assert(sizeof(((cow_vector_state *)0)->zmm) == 32 * 64, "zmm0-zmm31");
_Static_assert(offsetof(cow_vector_state, k) == 16, "cow_vector_state layout");

// The XSAVE layout PTRACE_GETREGSET(NT_X86_XSTATE) returns is the standard (non-compacted)
// one: legacy region (XMM0-15 at 160), header at 512 (XSTATE_BV first), then component i at
// the offset CPUID.(EAX=0xD, ECX=i).EBX gives.
enum { legacy_xmm = 160, header_offset = 512, buffer_size = 16384 };

int cow_xsave_component(int component, uint32_t *offset, uint32_t *size) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, NULL) < 0xd) return -1;
    __cpuid_count(0xd, component, eax, ebx, ecx, edx);
    if (eax == 0) return -1;
    *size = eax;
    *offset = ebx;
    return 0;
}

int cow_xsave_component_aligned(int component) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, NULL) < 0xd) return 0;
    __cpuid_count(0xd, component, eax, ebx, ecx, edx);
    return (ecx & 2) != 0;
}

uint64_t cow_xcr0(void) {
    unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 3;  // x87 and SSE only
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

int cow_ptrace_vector_state(pid_t pid, cow_vector_state *out) {
    static _Thread_local unsigned char buffer[buffer_size] __attribute__((aligned(64)));
    memset(out, 0, sizeof(*out));
    struct iovec iov = {buffer, sizeof(buffer)};
    if (ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) < 0) return -1;
    size_t length = iov.iov_len;
    if (length < header_offset + 8) {
        errno = EIO;
        return -1;
    }
    uint64_t xstate_bv;
    memcpy(&xstate_bv, buffer + header_offset, 8);
    out->xstate_bv = xstate_bv;
    out->xcr0 = cow_xcr0();
    // A component whose XSTATE_BV bit is clear is in its initial state: all zeros.
    if (xstate_bv & 2) {
        for (int i = 0; i < 16; i++) memcpy(out->zmm[i], buffer + legacy_xmm + 16 * i, 16);
    }
    uint32_t offset, size;
    if ((out->xcr0 & 4) && cow_xsave_component(2, &offset, &size) == 0 && offset + 256 <= length) {
        out->has_ymm = 1;
        if (xstate_bv & 4)
            for (int i = 0; i < 16; i++) memcpy(out->zmm[i] + 16, buffer + offset + 16 * i, 16);
    }
    if ((out->xcr0 & 0xe0) == 0xe0) {
        uint32_t k_offset, k_size, hi_offset, hi_size, hi16_offset, hi16_size;
        if (cow_xsave_component(5, &k_offset, &k_size) == 0 && cow_xsave_component(6, &hi_offset, &hi_size) == 0 &&
            cow_xsave_component(7, &hi16_offset, &hi16_size) == 0 && k_offset + 64 <= length &&
            hi_offset + 512 <= length && hi16_offset + 1024 <= length) {
            out->has_avx512 = 1;
            if (xstate_bv & 0x20) memcpy(out->k, buffer + k_offset, 64);
            if (xstate_bv & 0x40)
                for (int i = 0; i < 16; i++) memcpy(out->zmm[i] + 32, buffer + hi_offset + 32 * i, 32);
            if (xstate_bv & 0x80)
                for (int i = 0; i < 16; i++) memcpy(out->zmm[16 + i], buffer + hi16_offset + 64 * i, 64);
        }
    }
    return 0;
}

int cow_ptrace_getsigmask(pid_t pid, uint64_t *mask) {
    return (int)ptrace((enum __ptrace_request)PTRACE_GETSIGMASK, pid, (void *)sizeof(*mask), mask);
}

int cow_ptrace_setsigmask(pid_t pid, uint64_t mask) {
    return (int)ptrace((enum __ptrace_request)PTRACE_SETSIGMASK, pid, (void *)sizeof(mask), &mask);
}
