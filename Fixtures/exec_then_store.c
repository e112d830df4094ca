// Forks around an exec of itself: the first child exits at once (then nothing is shared),
// the program execs itself, and the new program forks again and stores into a shared page
// at `after_exec_store` while its child waits on a pipe. The parent's copy after the exec
// must be caught like any other (a tracer that kept the old program's perf event for it
// would see no fault: the kernel removes such events at exec).
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};

int main(int argc, char **argv) {
    if (argc < 2) {
        target[0] = 0x1111;
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        waitpid(pid, 0, 0);
        target[1] = 0x2222;  // nothing shared: no split
        execl("/proc/self/exe", argv[0], "again", (char *)0);
        return 2;
    }
    int fds[2];
    if (pipe(fds) != 0) return 2;
    target[0] = 0x1111;
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        read(fds[0], &c, 1);
        _exit(target[16] == 0 ? 0 : 1);
    }
    __asm__ volatile(".globl after_exec_store\nafter_exec_store:\n\tmovq $0x3333, %0" : "=m"(target[16]));
    write(fds[1], "x", 1);
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
