// vfork(): the child borrows the parent's memory until it execs or exits.
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t pid = vfork();
    if (pid == 0) _exit(5);
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status) == 5 ? 0 : 1;
}
