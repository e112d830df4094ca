// Scenario 2: clone() without CLONE_CHILD_SETTID, child on its own malloc'd stack, then
// function calls in parent and child (return addresses and spilled locals copy stack pages).
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static int work(int n) {
    volatile int acc = 0;
    for (int i = 0; i < n; i++) acc += i;
    return acc;
}

static int child(void *arg) {
    return work(*(int *)arg) == 45 ? 0 : 1;
}

int main(void) {
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    static int n = 10;
    pid_t pid = clone(child, stack + size, SIGCHLD, &n);
    if (pid < 0) return 2;
    work(20);
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
