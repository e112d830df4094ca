// A child stores into two shared pages with masked vector stores: vmovdqu8 under {k1} with
// mask 0x3ff (10 bytes) at the label masked_byte_store, and vpmaskmovd with 3 of 8 dword
// lanes selected (12 bytes) at masked_dword_store. Forms the CPU lacks are not run
// ("skip NAME" on stdout).
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char byte_page[4096] __attribute__((aligned(4096)));
char dword_page[4096] __attribute__((aligned(4096)));
static unsigned char source[64] __attribute__((aligned(64)));
static uint32_t lanes[8] __attribute__((aligned(32))) = {0x80000000u, 0x80000000u, 0x80000000u, 0, 0, 0, 0, 0};

static int has_avx512bw(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!(c & bit_OSXSAVE) || __get_cpuid_max(0, 0) < 7) return 0;
    uint32_t lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    unsigned b7;
    __cpuid_count(7, 0, a, b7, c, d);
    return (lo & 0xe6) == 0xe6 && (b7 & bit_AVX512F) && (b7 & bit_AVX512BW);
}

static int has_avx2(void) {
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    if (!(c & bit_OSXSAVE) || __get_cpuid_max(0, 0) < 7) return 0;
    uint32_t lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    unsigned b7;
    __cpuid_count(7, 0, a, b7, c, d);
    return (lo & 6) == 6 && (b7 & bit_AVX2);
}

int main(void) {
    for (int i = 0; i < 64; i++) source[i] = (unsigned char)(0x40 + i);
    memset(byte_page, 1, sizeof(byte_page));
    memset(dword_page, 1, sizeof(dword_page));
    int bw = has_avx512bw(), avx2 = has_avx2();
    if (!bw) printf("skip vmovdqu8\n");
    if (!avx2) printf("skip vpmaskmovd\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (bw) {
            __asm__ volatile("vmovdqu8 %0, %%zmm16\n mov $0x3ff, %%eax\n kmovq %%rax, %%k1\n"
                             ".globl masked_byte_store\nmasked_byte_store: vmovdqu8 %%zmm16, 100(%1) %{%%k1%}"
                             :: "m"(source), "r"(byte_page) : "rax", "memory");
        }
        if (avx2) {
            __asm__ volatile("vmovdqu %0, %%ymm4\n vmovdqu %1, %%ymm5\n"
                             ".globl masked_dword_store\nmasked_dword_store: vpmaskmovd %%ymm5, %%ymm4, 200(%2)"
                             :: "m"(lanes), "m"(source), "r"(dword_page) : "memory");
        }
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
