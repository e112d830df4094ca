// A grandchild stores into a page its parent and grandparent still share with it:
// writer = grandchild, others = parent and child. The store is at `grandchild_store`.
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    target[0] = 0x1111;
    pid_t child = fork();
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0) {
            __asm__ volatile(".globl grandchild_store\ngrandchild_store:\n\tmovq $0x4444, %0" : "=m"(target[24]));
            _exit(0);
        }
        waitpid(grandchild, 0, 0);
        _exit(0);
    }
    waitpid(child, 0, 0);
    return target[24] == 0 ? 0 : 1;
}
