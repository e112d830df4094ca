// The record engine's cost inside the program: forks a child that writes one byte to each
// of PAGES pre-touched pages (each store copies a shared page) and prints the time its loop
// took per page, from CLOCK_MONOTONIC around the loop only: what a tracer adds to each copy,
// without its own start, end or drain. Prints "N.NN us per page" on stderr.
//   usage: copy_loop
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES 20000
static volatile char pages[PAGES * 4096] __attribute__((aligned(4096))) = {1};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    for (int i = 0; i < PAGES; i++) pages[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        double start = now();
        for (long i = 0; i < PAGES; i++) pages[i * 4096] = 2;
        double end = now();
        fprintf(stderr, "%.2f us per page\n", (end - start) * 1e6 / PAGES);
        _exit(0);
    }
    return waitpid(pid, NULL, 0) == pid ? 0 : 1;
}
