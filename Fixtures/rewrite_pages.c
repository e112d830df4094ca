// The child writes each of PAGES pages (PAGES copies, one store: `rewrite_child_store`), writes
// them all again (its own pages now: no fault, no copy), then tells the parent, which writes
// every page too while the child still lives: the parent is the last holder of each old frame,
// so its write faults reuse them (PAGES faults, no copy). Then the child exits.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 64
volatile char pages[PAGES * 4096] __attribute__((aligned(4096))) = {1};

int main(void) {
    int ready[2], done[2];
    if (pipe(ready) || pipe(done)) return 1;
    for (int i = 0; i < PAGES; i++) pages[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < PAGES; i++) {
                __asm__ volatile(".globl rewrite_child_store\nrewrite_child_store:\n\tmovb $2, (%0)" : : "r"(pages + i * 4096) : "memory");
            }
        }
        char c = 1;
        if (write(ready[1], &c, 1) != 1 || read(done[0], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1) return 1;
    for (int i = 0; i < PAGES; i++) {
        __asm__ volatile(".globl rewrite_parent_store\nrewrite_parent_store:\n\tmovb $3, (%0)" : : "r"(pages + i * 4096) : "memory");
    }
    if (write(done[1], &c, 1) != 1) return 1;
    waitpid(pid, 0, 0);
    return 0;
}
