// One store instruction (the global label `shared_store`) reached from two callers: the child
// writes page `first` through first_caller, then page `second` through second_caller. The
// two splits have the same ip and stack depth; their frame #1 must differ.
#include <sys/wait.h>
#include <unistd.h>

volatile long first[512] __attribute__((aligned(4096))) = {1};
volatile long second[512] __attribute__((aligned(4096))) = {1};

__attribute__((noinline)) void store_into(volatile long *page, long value) {
    __asm__ volatile(".globl shared_store\nshared_store:\n\tmovq %1, %0" : "=m"(page[4]) : "r"(value));
}

__attribute__((noinline)) void first_caller(void) { store_into(first, 0x1111); }
__attribute__((noinline)) void second_caller(void) { store_into(second, 0x2222); }

int main(void) {
    first[0] = second[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        first_caller();
        second_caller();
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
