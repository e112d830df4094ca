// A transparent huge page shared by fork: 2 MiB of anonymous memory, 2 MiB aligned, with
// MADV_HUGEPAGE, all written before the fork. The child writes one byte in its middle with
// the store at `thp_store`: the kernel splits the mapping and copies the one 4 KiB page.
// Prints the written page's address and whether the region is backed by a huge page
// (AnonHugePages of its mapping in /proc/self/smaps).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define HUGE (2UL << 20)

static long anon_huge_kb(unsigned long address) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int inside = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = address >= start && address < end;
        } else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

int main(void) {
    char *raw = mmap(0, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return 2;
    char *huge = (char *)(((unsigned long)raw + HUGE - 1) & ~(HUGE - 1));
    madvise(huge, HUGE, MADV_HUGEPAGE);
    memset(huge, 1, HUGE);
    volatile char *target = huge + HUGE / 2 + 123;
    printf("page %#lx thp %d\n", (unsigned long)target & ~4095UL, anon_huge_kb((unsigned long)huge) >= 2048);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        __asm__ volatile(".globl thp_store\nthp_store:\n\tmovb $7, (%0)" : : "r"(target) : "memory");
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 1;
    return *target == 1 ? 0 : 3;
}
