// 64 pre-touched pages; the child moves to the next CPU (sched_setaffinity) before each
// store at `hop_store`, so one thread's write faults are taken on every CPU in turn (the
// record engine's samples of one thread spread over several per-CPU ring buffers).
#define _GNU_SOURCE
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 64
volatile char hops[PAGES * 4096] __attribute__((aligned(4096))) = {1};

int main(void) {
    for (int i = 0; i < PAGES; i++) hops[i * 4096] = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pid_t pid = fork();
    if (pid == 0) {
        volatile char *p = hops;
        for (int i = 0; i < PAGES; i++) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(i % (cpus > 0 ? cpus : 1), &set);
            sched_setaffinity(0, sizeof set, &set);
            __asm__ volatile(".globl hop_store\nhop_store:\n\tmovb $2, (%0)" : : "r"(p + (long)i * 4096) : "memory");
        }
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
