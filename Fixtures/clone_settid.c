// clone() with CLONE_CHILD_SETTID and CLONE_PARENT_SETTID, the child on its own malloc'd stack.
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t child_tid;
static pid_t parent_tid;

static int child(void *arg) {
    (void)arg;
    return 7;
}

int main(void) {
    size_t size = 64 * 1024;
    char *stack = malloc(size);
    pid_t pid = clone(child, stack + size, CLONE_CHILD_SETTID | CLONE_PARENT_SETTID | SIGCHLD, NULL,
                      &parent_tid, NULL, &child_tid);
    if (pid < 0) return 2;
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status) == 7 && parent_tid == pid ? 0 : 1;
}
