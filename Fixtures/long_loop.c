// For the fault-engine benchmark: after fork the child runs ITERATIONS register-only loop
// iterations (two instructions each), then writes one byte to each of 100 pre-touched pages.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 100
volatile char pages[PAGES * 4096] __attribute__((aligned(4096))) = {1};

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 100000000L;
    for (int i = 0; i < PAGES; i++) pages[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        long n = iterations;
        __asm__ volatile("1: dec %0\n\tjnz 1b" : "+r"(n));
        for (int i = 0; i < PAGES; i++) pages[i * 4096] = 2;
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
