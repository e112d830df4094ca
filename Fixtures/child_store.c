// Scenario 4: one store by the child into a pre-touched, page-aligned global. The store is
// at the global asm label `child_store`; it writes 8 bytes at &target[8].
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};
// A page nobody writes after fork: it stays shared (same frame in both processes).
volatile long untouched[512] __attribute__((aligned(4096))) = {7};

int main(void) {
    target[0] = 0x1111;  // the parent owns the page before fork
    untouched[0] = 7;
    pid_t pid = fork();
    if (pid == 0) {
        __asm__ volatile(".globl child_store\nchild_store:\n\tmovq $0x2222, %0" : "=m"(target[8]));
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return target[8] == 0 ? 0 : 1;  // the parent's copy is untouched
}
