// A program that forked once and goes on without its child: forks a child that exits at
// once, waits SETTLE_MS (default 500: the tracer's tick comes every 250 ms), then touches
// 1 GiB of fresh memory and prints the time per first touch (CLOCK_MONOTONIC around the
// loop only) on stderr. Under cowtrace it shares nothing by then: it should run as untraced.
//   usage: after_fork [SETTLE_MS]
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int settle = argc > 1 ? atoi(argv[1]) : 500;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (waitpid(pid, NULL, 0) != pid) return 1;
    usleep((useconds_t)settle * 1000);
    size_t size = (size_t)1 << 30;
    volatile char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return 1;
    double start = now();
    for (size_t i = 0; i < size; i += 4096) memory[i] = 1;
    double end = now();
    fprintf(stderr, "%.3f us per first touch\n", (end - start) * 1e6 / (double)(size / 4096));
    return 0;
}
