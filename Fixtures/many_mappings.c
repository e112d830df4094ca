// Makes COUNT (argv[1], default 30000) separate one-page mappings, each with a page
// present (alternate protections keep the kernel from merging them), prints "ready" and
// sleeps: reading its pages takes a while, so a test can end it mid-read.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 30000;
    for (int i = 0; i < count; i++) {
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return 1;
        p[0] = 1;
        if (i % 2) mprotect(p, 4096, PROT_READ);
    }
    printf("ready\n");
    fflush(stdout);
    pause();
    return 0;
}
