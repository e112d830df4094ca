// 2000 pre-touched pages; the child writes one byte to each with the single store at
// `page_loop_store`: 2000 splits, one instruction. argv[1] writes fewer (benchmarks).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PAGES  // the benchmark builds a larger one, for a steadier per-page figure
#define PAGES 2000
#endif
volatile char pages[PAGES * 4096] __attribute__((aligned(4096))) = {1};

int main(int argc, char **argv) {
    int written = argc > 1 ? atoi(argv[1]) : PAGES;
    for (int i = 0; i < PAGES; i++) pages[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        volatile char *p = pages;
        for (int i = 0; i < written; i++) {
            __asm__ volatile(".globl page_loop_store\npage_loop_store:\n\tmovb $2, (%0)" : : "r"(p + (long)i * 4096) : "memory");
        }
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
