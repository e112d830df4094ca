// The parent stores into a shared page while the child blocks reading a pipe: the copy is
// made in the parent (writer = parent); the child keeps the original frame.
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    target[0] = 0x1111;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        read(fds[0], &c, 1);
        _exit(target[16] == 0 ? 0 : 1);
    }
    __asm__ volatile(".globl parent_store\nparent_store:\n\tmovq $0x3333, %0" : "=m"(target[16]));
    write(fds[1], "x", 1);
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
