// Scenario 3: clone() with no function calls after it in the child: the child spins in a
// register-only loop reading a shared variable, then leaves by a raw exit_group. The
// watched page (`watched`) must stay shared: same frame in both processes.
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long watched[512] __attribute__((aligned(4096))) = {42};

static int child(void *arg) {
    (void)arg;
    long sum = 0;
    for (int i = 0; i < 2000; i++) sum += watched[0];
    __asm__ volatile("syscall" : : "a"(SYS_exit_group), "D"(sum == 84000 ? 0 : 1) : "rcx", "r11", "memory");
    return 0;
}

int main(void) {
    watched[0] = 42;
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    pid_t pid = clone(child, stack + size, SIGCHLD, NULL);
    if (pid < 0) return 2;
    long sum = 0;
    for (int i = 0; i < 2000; i++) sum += watched[0];
    int status = 0;
    waitpid(pid, &status, 0);
    return sum == 84000 && WEXITSTATUS(status) == 0 ? 0 : 1;
}
