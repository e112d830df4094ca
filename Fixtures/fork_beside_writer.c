// A parent whose second thread stores into 256 shared pages without pause while the main
// thread forks, FORKS times one after another (-q: each fork is taken at its event stop,
// after the kernel made the child, and the writer may have run meanwhile). For each child,
// every page of `beside` is copied by the parent exactly once: by the writer's store (the
// global asm label `beside_store`), or, for a page the writer copied between the kernel's
// fork and the tracer's look, inside clone. The children only sleep: they copy none of them.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 256
#define FORKS 4
char beside[PAGES * 4096] __attribute__((aligned(4096)));
static volatile int stop;

__attribute__((noinline)) static void store(char *p, char value) {
    __asm__ volatile(".globl beside_store\nbeside_store:\n\tmovb %1, %0" : "=m"(*p) : "q"(value));
}

// The writer on one CPU, the forking thread on another (when there are two): the writer
// runs on while the kernel forks and until the tracer stops it.
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *writer(void *arg) {
    (void)arg;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 1) pin((int)cpus - 1);
    for (unsigned n = 1; !stop; n++) {
        for (int i = 0; i < PAGES; i++) store(&beside[i * 4096 + (n & 63)], (char)n);
    }
    return 0;
}

int main(void) {
    for (int i = 0; i < PAGES; i++) beside[i * 4096] = 1;  // present (and the parent's) before the fork
    if (sysconf(_SC_NPROCESSORS_ONLN) > 1) pin(0);
    pthread_t thread;
    pthread_create(&thread, 0, writer, 0);
    int failed = 0;
    for (int k = 0; k < FORKS; k++) {
        usleep(20000);
        pid_t pid = fork();
        if (pid == 0) {
            usleep(200000);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        failed |= WEXITSTATUS(status);
    }
    stop = 1;
    pthread_join(thread, 0);
    return failed;
}
