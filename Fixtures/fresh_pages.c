// After fork the child maps 512 fresh pages (shared with nobody: mapped after the fork) and
// touches each, then writes the one page it shares with its parent at `fresh_share_store`.
// The 512 first touches copy nothing; the store copies one page.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRESH 512
volatile char shared_page[4096] __attribute__((aligned(4096))) = {1};

int main(void) {
    shared_page[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        volatile char *fresh = mmap(NULL, FRESH * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (fresh == MAP_FAILED) _exit(1);
        for (int i = 0; i < FRESH; i++) fresh[i * 4096] = 1;
        __asm__ volatile(".globl fresh_share_store\nfresh_share_store:\n\tmovb $2, (%0)" : : "r"(shared_page) : "memory");
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return 1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
