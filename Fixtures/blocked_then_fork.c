// The parent blocks SIGTRAP while its first child shares its pages and waits for that child
// with it blocked (the fault engine steps it and turns its perf event off), then, sharing
// nothing, unblocks and forks again at once and stores into `page` at `refork_store`: that
// copy is the instruction's, however the first sharing ended.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

volatile char page[4096] __attribute__((aligned(4096))) = {1};

int main(void) {
    page[0] = 1;
    sigset_t trap;
    sigemptyset(&trap);
    sigaddset(&trap, SIGTRAP);
    pid_t first = fork();
    if (first == 0) _exit(0);
    sigprocmask(SIG_BLOCK, &trap, NULL);
    if (waitpid(first, NULL, 0) != first) return 1;
    sigprocmask(SIG_UNBLOCK, &trap, NULL);
    int fds[2];
    if (pipe(fds) != 0) return 1;
    pid_t second = fork();
    if (second == 0) {
        char c;
        if (read(fds[0], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    __asm__ volatile(".globl refork_store\nrefork_store:\n\tmovb $3, (%0)" : : "r"(page) : "memory");
    if (write(fds[1], "x", 1) != 1) return 1;
    return waitpid(second, NULL, 0) == second ? 0 : 1;
}
