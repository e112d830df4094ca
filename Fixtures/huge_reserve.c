// Reserves argv[1] GiB (default 16384: 16 TiB, AddressSanitizer's shadow size) with
// MAP_NORESERVE, touches 8 pages spread over it, forks; the child writes one of them with
// the store at `reserve_store` and exits. One split, whatever the size reserved.
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned long gib = argc > 1 ? strtoul(argv[1], 0, 10) : 16384;
    unsigned long size = gib << 30;
    char *base = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return 2;
    for (int i = 0; i < 8; i++) base[(size / 8) * i + 4096 * i] = (char)(i + 1);
    volatile char *target = base + (size / 8) * 3 + 4096 * 3;
    pid_t pid = fork();
    if (pid == 0) {
        __asm__ volatile(".globl reserve_store\nreserve_store:\n\tmovb $9, (%0)" : : "r"(target) : "memory");
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    return *target == 4 ? 0 : 3;
}
