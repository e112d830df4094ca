// Two named functions copy pages of one shared array: after fork the child writes
// argv[1] pages through write_alpha (store `alpha_store`), then argv[2] further pages
// through write_beta (store `beta_store`). Runs with different counts are compared by
// `cowtrace diff`; `--watch` on `pages` keeps only these copies. argv[3]: milliseconds the
// child then sleeps (a log followed while the program still runs).
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 128
volatile char pages[PAGES * 4096] __attribute__((aligned(4096))) = {1};

__attribute__((noinline)) void write_alpha(volatile char *p, int n) {
    for (int i = 0; i < n; i++) {
        __asm__ volatile(".globl alpha_store\nalpha_store:\n\tmovb $2, (%0)" : : "r"(p + (long)i * 4096) : "memory");
    }
}

__attribute__((noinline)) void write_beta(volatile char *p, int n) {
    for (int i = 0; i < n; i++) {
        __asm__ volatile(".globl beta_store\nbeta_store:\n\tmovb $3, (%0)" : : "r"(p + (long)i * 4096) : "memory");
    }
}

int main(int argc, char **argv) {
    int alpha = argc > 1 ? atoi(argv[1]) : 8;
    int beta = argc > 2 ? atoi(argv[2]) : 16;
    int sleep_ms = argc > 3 ? atoi(argv[3]) : 0;
    if (alpha < 0 || beta < 0 || alpha + beta > PAGES) return 2;
    for (int i = 0; i < PAGES; i++) pages[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        write_alpha(pages, alpha);
        write_beta(pages + (long)alpha * 4096, beta);
        if (sleep_ms > 0) usleep(sleep_ms * 1000);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
