// Write-set conformance: each instruction form runs, in a forked child, at a global label
// form_NAME on a page shared with the parent (between PROT_NONE guard pages) and filled
// with a pattern. The child sends the page back through a pipe (read by the kernel: no
// copy) and exits; the parent prints the bytes that changed, the CPU being the oracle:
//   form NAME page=0xPAGE child=PID expect=exact|cover|first changed=0xA+N,0xB+M
// exact: the write set is exactly these bytes; cover: it contains them (the instruction
// also rewrites bytes with their old value); first: a rep instruction, whose first
// iteration is what splits the page. Forms the CPU lacks print "skip NAME".
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATTERN 0xa5
#define L(name) ".globl form_" #name "\nform_" #name ":\n"

static unsigned char source[128] __attribute__((aligned(64)));
static int32_t dword_index[16] = {0, 3, 7, 12, 40, 41, 100, 5, 60, 61, 62, 63, 200, 201, 90, 91};
static int64_t qword_index[8] = {0, 5, 9, 30, 31, 80, 2, 50};
static unsigned char lane_mask[32] __attribute__((aligned(32)));

static void load_vectors(void) {
    __asm__ volatile("vmovdqu64 %0, %%zmm16\n vmovdqu64 %0, %%zmm1\n vmovdqu64 %1, %%zmm2\n vmovdqu64 %2, %%zmm3"
                     :: "m"(source), "m"(dword_index), "m"(qword_index));
}
static void set_k1(uint64_t mask) { __asm__ volatile("kmovq %0, %%k1" :: "r"(mask)); }
static void set_k1w(uint64_t mask) { __asm__ volatile("kmovw %k0, %%k1" :: "r"(mask)); }

// ---- the forms ---------------------------------------------------------------------------
static void f_movb(char *p) { __asm__ volatile(L(movb) "movb $0x11, 3(%0)" :: "r"(p) : "memory"); }
static void f_vmovdqu8(char *p) { load_vectors(); set_k1(0x3ff); __asm__ volatile(L(vmovdqu8) "vmovdqu8 %%zmm16, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovdqu16(char *p) { load_vectors(); set_k1(0xa5); __asm__ volatile(L(vmovdqu16) "vmovdqu16 %%ymm16, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovdqu32(char *p) { load_vectors(); set_k1w(0xf0); __asm__ volatile(L(vmovdqu32) "vmovdqu32 %%zmm16, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovdqu64(char *p) { load_vectors(); set_k1w(0x81); __asm__ volatile(L(vmovdqu64) "vmovdqu64 %%zmm16, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovups(char *p) { load_vectors(); set_k1w(0x0f0f); __asm__ volatile(L(vmovups) "vmovups %%zmm1, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovaps(char *p) { load_vectors(); set_k1w(0x5); __asm__ volatile(L(vmovaps) "vmovaps %%xmm1, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovupd(char *p) { load_vectors(); set_k1w(0x6); __asm__ volatile(L(vmovupd) "vmovupd %%ymm1, 8(%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovapd(char *p) { load_vectors(); set_k1w(0x80); __asm__ volatile(L(vmovapd) "vmovapd %%zmm1, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vmovss(char *p) { load_vectors(); set_k1w(0x1); __asm__ volatile(L(vmovss) "vmovss %%xmm1, 4(%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vpcompressd(char *p) { load_vectors(); set_k1w(0xa5a5); __asm__ volatile(L(vpcompressd) "vpcompressd %%zmm1, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vcompresspd(char *p) { load_vectors(); set_k1w(0x13); __asm__ volatile(L(vcompresspd) "vcompresspd %%zmm1, 8(%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vpcompressb(char *p) { load_vectors(); set_k1(0x8000000000000f0full); __asm__ volatile(L(vpcompressb) "vpcompressb %%zmm16, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vpmovqd(char *p) { load_vectors(); set_k1w(0x55); __asm__ volatile(L(vpmovqd) "vpmovqd %%zmm1, (%0) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vpscatterdd(char *p) { load_vectors(); set_k1w(0x0f0f); __asm__ volatile(L(vpscatterdd) "vpscatterdd %%zmm1, (%0,%%zmm2,4) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vpscatterqd(char *p) { load_vectors(); set_k1w(0xf3); __asm__ volatile(L(vpscatterqd) "vpscatterqd %%ymm1, 16(%0,%%zmm3,4) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vscatterdpd(char *p) { load_vectors(); set_k1w(0x3c); __asm__ volatile(L(vscatterdpd) "vscatterdpd %%zmm1, (%0,%%ymm2,8) %{%%k1%}" :: "r"(p) : "memory"); }
static void f_vpmaskmovd(char *p) {
    memset(lane_mask, 0, sizeof(lane_mask));
    lane_mask[3] = lane_mask[7] = lane_mask[11] = 0x80;  // lanes 0, 1, 2
    __asm__ volatile("vmovdqu %0, %%ymm4\n vmovdqu %1, %%ymm5\n" L(vpmaskmovd) "vpmaskmovd %%ymm5, %%ymm4, (%2)"
                     :: "m"(lane_mask), "m"(source), "r"(p) : "memory");
}
static void f_vpmaskmovq(char *p) {
    memset(lane_mask, 0, sizeof(lane_mask));
    lane_mask[15] = lane_mask[31] = 0x80;  // lanes 1 and 3
    __asm__ volatile("vmovdqu %0, %%ymm4\n vmovdqu %1, %%ymm5\n" L(vpmaskmovq) "vpmaskmovq %%ymm5, %%ymm4, (%2)"
                     :: "m"(lane_mask), "m"(source), "r"(p) : "memory");
}
static void f_vmaskmovps(char *p) {
    memset(lane_mask, 0, sizeof(lane_mask));
    lane_mask[7] = lane_mask[27] = 0x80;  // lanes 1 and 6
    __asm__ volatile("vmovdqu %0, %%ymm4\n vmovdqu %1, %%ymm5\n" L(vmaskmovps) "vmaskmovps %%ymm5, %%ymm4, (%2)"
                     :: "m"(lane_mask), "m"(source), "r"(p) : "memory");
}
static void f_maskmovdqu(char *p) {
    memset(lane_mask, 0, sizeof(lane_mask));
    lane_mask[0] = lane_mask[1] = lane_mask[9] = lane_mask[15] = 0x80;
    __asm__ volatile("movdqu %0, %%xmm6\n movdqu %1, %%xmm7\n mov %2, %%rdi\n" L(maskmovdqu) "maskmovdqu %%xmm6, %%xmm7"
                     :: "m"(lane_mask), "m"(source), "r"(p) : "rdi", "memory");
}
static void f_vmaskmovdqu(char *p) {
    memset(lane_mask, 0, sizeof(lane_mask));
    lane_mask[2] = lane_mask[3] = lane_mask[4] = 0x80;
    __asm__ volatile("vmovdqu %0, %%xmm6\n vmovdqu %1, %%xmm7\n mov %2, %%rdi\n" L(vmaskmovdqu) "vmaskmovdqu %%xmm6, %%xmm7"
                     :: "m"(lane_mask), "m"(source), "r"(p) : "rdi", "memory");
}
static void f_fxsave64(char *p) { __asm__ volatile(L(fxsave64) "fxsave64 (%0)" :: "r"(p) : "memory"); }
static void f_xsave64(char *p) { load_vectors(); __asm__ volatile(L(xsave64) "xsave64 (%0)" :: "r"(p), "a"(-1), "d"(-1) : "memory"); }
static void f_xsavesse(char *p) { __asm__ volatile(L(xsavesse) "xsave64 (%0)" :: "r"(p), "a"(2), "d"(0) : "memory"); }
static void f_xsaveopt64(char *p) { load_vectors(); __asm__ volatile(L(xsaveopt64) "xsaveopt64 (%0)" :: "r"(p), "a"(-1), "d"(-1) : "memory"); }
static void f_xsavec64(char *p) { load_vectors(); __asm__ volatile(L(xsavec64) "xsavec64 (%0)" :: "r"(p), "a"(-1), "d"(-1) : "memory"); }
// The stack forms run with %rsp (and %rbp) inside the page.
static void f_enter0(char *p) {
    __asm__ volatile("mov %%rsp, %%r12\n mov %%rbp, %%r13\n lea 2048(%0), %%rsp\n lea 2304(%0), %%rbp\n"
                     L(enter0) "enter $32, $0\n mov %%r13, %%rbp\n mov %%r12, %%rsp" :: "r"(p) : "r12", "r13", "memory");
}
static void f_enter3(char *p) {
    __asm__ volatile("mov %%rsp, %%r12\n mov %%rbp, %%r13\n lea 2048(%0), %%rsp\n lea 2304(%0), %%rbp\n"
                     L(enter3) "enter $16, $3\n mov %%r13, %%rbp\n mov %%r12, %%rsp" :: "r"(p) : "r12", "r13", "memory");
}
static void f_pushmem(char *p) {
    __asm__ volatile("mov %%rsp, %%r12\n lea 2048(%0), %%rsp\n" L(pushmem) "pushq %1\n mov %%r12, %%rsp"
                     :: "r"(p), "m"(source) : "r12", "memory");
}
static void f_popmem(char *p) {
    // The value popped is on the scratch page after this one; pop -16(%rsp) stores it at
    // the end of this page: the address is computed after %rsp moved up.
    __asm__ volatile("mov %%rsp, %%r12\n lea 4096(%0), %%rsp\n" L(popmem) "popq -16(%%rsp)\n mov %%r12, %%rsp"
                     :: "r"(p) : "r12", "memory");
}
static void f_movsq(char *p) { __asm__ volatile("lea %1, %%rsi\n mov %0, %%rdi\n" L(movsq) "movsq" :: "r"(p), "m"(source) : "rsi", "rdi", "memory"); }
static void f_repmovsb(char *p) {
    __asm__ volatile("lea %1, %%rsi\n mov %0, %%rdi\n mov $100, %%ecx\n" L(repmovsb) "rep movsb"
                     :: "r"(p), "m"(source) : "rsi", "rdi", "rcx", "memory");
}
static void f_repstosq_down(char *p) {
    __asm__ volatile("lea 512(%0), %%rdi\n mov $0x1122334455667788, %%rax\n mov $5, %%ecx\n std\n" L(repstosq_down) "rep stosq\n cld"
                     :: "r"(p) : "rax", "rdi", "rcx", "memory");
}
static void f_cmpxchg8b(char *p) {
    // EDX:EAX equal to the pattern: the exchange succeeds and ECX:EBX is stored.
    __asm__ volatile("mov $0xa5a5a5a5, %%eax\n mov %%eax, %%edx\n mov $0x01020304, %%ebx\n mov $0x05060708, %%ecx\n"
                     L(cmpxchg8b) "lock cmpxchg8b 8(%0)" :: "r"(p) : "rax", "rbx", "rcx", "rdx", "memory");
}
static void f_cmpxchg16b(char *p) {
    __asm__ volatile("mov $0xa5a5a5a5a5a5a5a5, %%rax\n mov %%rax, %%rdx\n mov $0x0102030405060708, %%rbx\n mov %%rbx, %%rcx\n"
                     L(cmpxchg16b) "lock cmpxchg16b 16(%0)" :: "r"(p) : "rax", "rbx", "rcx", "rdx", "memory");
}
static void f_btsq(char *p) { __asm__ volatile("mov $1001, %%rax\n" L(btsq) "btsq %%rax, (%0)" :: "r"(p) : "rax", "memory"); }
static void f_btrq(char *p) { __asm__ volatile("mov $-99, %%rax\n" L(btrq) "btrq %%rax, 2048(%0)" :: "r"(p) : "rax", "memory"); }
static void f_btcl(char *p) { __asm__ volatile("mov $77, %%eax\n" L(btcl) "btcl %%eax, 8(%0)" :: "r"(p) : "rax", "memory"); }
static void f_btsw(char *p) { __asm__ volatile("mov $-5, %%ax\n" L(btsw) "btsw %%ax, 64(%0)" :: "r"(p) : "rax", "memory"); }

// ---- the table ---------------------------------------------------------------------------
enum { NONE, AVX, AVX2, F, BW, VL, BWVL, VBMI2, XSAVE, XSAVEOPT, XSAVEC };
static const struct form {
    const char *name;
    void (*run)(char *);
    int needs;
    const char *expect;
    int offset;  // where p points in the page
} forms[] = {
    {"movb", f_movb, NONE, "exact", 256},
    {"vmovdqu8", f_vmovdqu8, BW, "exact", 256},
    {"vmovdqu16", f_vmovdqu16, BWVL, "exact", 256},
    {"vmovdqu32", f_vmovdqu32, F, "exact", 256},
    {"vmovdqu64", f_vmovdqu64, F, "exact", 256},
    {"vmovups", f_vmovups, F, "exact", 256},
    {"vmovaps", f_vmovaps, VL, "exact", 256},
    {"vmovupd", f_vmovupd, VL, "exact", 256},
    {"vmovapd", f_vmovapd, F, "exact", 256},
    {"vmovss", f_vmovss, F, "exact", 256},
    {"vpcompressd", f_vpcompressd, F, "exact", 256},
    {"vcompresspd", f_vcompresspd, F, "exact", 256},
    {"vpcompressb", f_vpcompressb, VBMI2, "exact", 256},
    {"vpmovqd", f_vpmovqd, F, "exact", 256},
    {"vpscatterdd", f_vpscatterdd, F, "exact", 256},
    {"vpscatterqd", f_vpscatterqd, F, "exact", 256},
    {"vscatterdpd", f_vscatterdpd, F, "exact", 256},
    {"vpmaskmovd", f_vpmaskmovd, AVX2, "exact", 256},
    {"vpmaskmovq", f_vpmaskmovq, AVX2, "exact", 256},
    {"vmaskmovps", f_vmaskmovps, AVX, "exact", 256},
    {"maskmovdqu", f_maskmovdqu, NONE, "exact", 256},
    {"vmaskmovdqu", f_vmaskmovdqu, AVX, "exact", 256},
    {"fxsave64", f_fxsave64, NONE, "cover", 512},
    {"xsave64", f_xsave64, XSAVE, "cover", 512},
    {"xsavesse", f_xsavesse, XSAVE, "cover", 512},
    {"xsaveopt64", f_xsaveopt64, XSAVEOPT, "cover", 512},
    {"xsavec64", f_xsavec64, XSAVEC, "cover", 512},
    {"enter0", f_enter0, NONE, "exact", 0},
    {"enter3", f_enter3, NONE, "cover", 0},  // copies frame pointers equal to the pattern
    {"pushmem", f_pushmem, NONE, "exact", 0},
    {"popmem", f_popmem, NONE, "exact", 0},
    {"movsq", f_movsq, NONE, "exact", 256},
    {"repmovsb", f_repmovsb, NONE, "first", 256},
    {"repstosq_down", f_repstosq_down, NONE, "first", 256},
    {"cmpxchg8b", f_cmpxchg8b, NONE, "exact", 256},
    {"cmpxchg16b", f_cmpxchg16b, NONE, "exact", 256},
    {"btsq", f_btsq, NONE, "cover", 256},
    {"btrq", f_btrq, NONE, "cover", 256},
    {"btcl", f_btcl, NONE, "cover", 256},
    {"btsw", f_btsw, NONE, "cover", 256},
};

static int has(int needs) {
    unsigned a, b, c, d;
    unsigned b7 = 0, c7 = 0, ax1 = 0, c1 = 0;
    __cpuid(1, a, b, c1, d);
    if (__get_cpuid_max(0, 0) >= 7) __cpuid_count(7, 0, a, b7, c7, d);
    if (__get_cpuid_max(0, 0) >= 0xd) __cpuid_count(0xd, 1, ax1, b, c, d);
    int osxsave = (c1 >> 27) & 1;
    uint64_t xcr0 = 0;
    if (osxsave) { uint32_t lo, hi; __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); xcr0 = ((uint64_t)hi << 32) | lo; }
    int avx = osxsave && ((c1 >> 28) & 1) && (xcr0 & 6) == 6;
    int f = avx && ((b7 >> 16) & 1) && (xcr0 & 0xe0) == 0xe0;
    switch (needs) {
    case NONE: return 1;
    case AVX: return avx;
    case AVX2: return avx && ((b7 >> 5) & 1);
    case F: return f;
    case BW: return f && ((b7 >> 30) & 1);
    case VL: return f && ((b7 >> 31) & 1);
    case BWVL: return f && ((b7 >> 30) & 1) && ((b7 >> 31) & 1);
    case VBMI2: return f && ((c7 >> 6) & 1) && ((b7 >> 31) & 1);
    case XSAVE: return osxsave;
    case XSAVEOPT: return osxsave && (ax1 & 1);
    case XSAVEC: return osxsave && ((ax1 >> 1) & 1);
    }
    return 0;
}

int main(void) {
    for (int i = 0; i < (int)sizeof(source); i++) source[i] = (unsigned char)(i + 1);
    setvbuf(stdout, NULL, _IONBF, 0);
    for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
        const struct form *form = &forms[f];
        if (!has(form->needs)) { printf("skip %s\n", form->name); continue; }
        // guard, the page, a scratch page (popmem reads it), guard
        char *area = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED) return 1;
        char *page = area + 4096;
        mprotect(area, 4096, PROT_NONE);
        mprotect(area + 3 * 4096, 4096, PROT_NONE);
        memset(page, PATTERN, 4096);
        memset(page + 4096, 0x11, 4096);
        int fds[2];
        if (pipe(fds) != 0) return 1;
        pid_t child = fork();
        if (child == 0) {
            form->run(page + form->offset);
            write(fds[1], page, 4096);
            _exit(0);
        }
        unsigned char copy[4096];
        size_t got = 0;
        close(fds[1]);
        while (got < sizeof(copy)) {
            ssize_t n = read(fds[0], copy + got, sizeof(copy) - got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        close(fds[0]);
        int status;
        waitpid(child, &status, 0);
        printf("form %s page=%p child=%d expect=%s changed=", form->name, (void *)page, child, form->expect);
        if (got != sizeof(copy) || !WIFEXITED(status)) { printf("failed\n"); continue; }
        int first = 1;
        for (int i = 0; i < 4096;) {
            if (copy[i] == PATTERN) { i++; continue; }
            int j = i;
            while (j < 4096 && copy[j] != PATTERN) j++;
            printf("%s%p+%d", first ? "" : ",", (void *)(page + i), j - i);
            first = 0;
            i = j;
        }
        printf("%s\n", first ? "none" : "");
        munmap(area, 4 * 4096);
    }
    return 0;
}
