// Forks children one after another (argv[1], default 3000); each writes one page of the
// parent's data (a store at `child_page_store`) and exits, and is reaped before the next.
// With argv[2] = "hold" it then prints "children done" and waits for a line on stdin, so a
// test can look at the tracer while it still traces the parent.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

volatile char page[4096] __attribute__((aligned(4096))) = {1};

int main(int argc, char **argv) {
    int children = argc > 1 ? atoi(argv[1]) : 3000;
    page[0] = 1;
    for (int i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            __asm__ volatile(".globl child_page_store\nchild_page_store:\n\tmovb $2, (%0)" : : "r"(page) : "memory");
            _exit(0);
        }
        if (waitpid(pid, 0, 0) != pid) return 1;
    }
    if (argc > 2 && strcmp(argv[2], "hold") == 0) {
        printf("children done\n");
        fflush(stdout);
        char line[16];
        if (!fgets(line, sizeof line, stdin)) return 0;
    }
    return 0;
}
