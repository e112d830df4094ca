// The child copies a page from a function called by main: the backtrace at the split must
// read writer_function <- main. The store is at the global label `chain_store`.
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};

__attribute__((noinline)) void writer_function(long value) {
    __asm__ volatile(".globl chain_store\nchain_store:\n\tmovq %1, %0" : "=m"(target[32]) : "r"(value));
}

int main(void) {
    target[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        writer_function(0x5555);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
