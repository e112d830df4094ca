// Scenario 1: glibc fork() = clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD).
// The kernel stores the child's TID in the child's TLS block; the child then writes a
// local on its stack; the parent writes the same local after the child is gone.
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    volatile int local = 1;
    printf("local at %p\n", (void *)&local);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        local = 2;
        _exit(local == 2 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    local = 3;
    printf("child exited with %d, local %d\n", WEXITSTATUS(status), local);
    return 0;
}
