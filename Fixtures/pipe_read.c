// Scenario 5: the child read()s from a pipe into a buffer on a shared page: the kernel
// makes the copy inside read (cause syscall read).
#include <sys/wait.h>
#include <unistd.h>

char buffer[4096] __attribute__((aligned(4096))) = {1};

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    buffer[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        ssize_t n = read(fds[0], buffer + 100, 16);
        _exit(n == 5 ? 0 : 1);
    }
    write(fds[1], "hello", 5);
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
