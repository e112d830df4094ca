// A child that stores into 4 shared pages with every signal blocked (one instruction, at
// the global label blocked_store), unblocks, then stores into 4 more (at unblocked_store).
// Then a SIGUSR1 handler, which runs with every signal blocked (sa_mask), stores into 2
// more (at handler_store). The child checks that its mask came through unchanged: tracing
// must not unblock SIGTRAP.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char pages[8][4096] __attribute__((aligned(4096)));
static char handler_pages[2][4096] __attribute__((aligned(4096)));
static volatile int handler_ran;

static void on_usr1(int sig) {
    (void)sig;
    __asm__ volatile("xor %%ecx, %%ecx\n"
                     "1: mov %%rcx, %%rax\n shl $12, %%rax\n"
                     ".globl handler_store\nhandler_store: movq $5, (%0,%%rax)\n"
                     "inc %%ecx\n cmp $2, %%ecx\n jne 1b" :: "r"(handler_pages[0]) : "rax", "rcx", "memory");
    handler_ran = 1;
}

static void store4(char *first, int blocked) {
    if (blocked) {
        __asm__ volatile("xor %%ecx, %%ecx\n"
                         "1: mov %%rcx, %%rax\n shl $12, %%rax\n"
                         ".globl blocked_store\nblocked_store: movq $7, (%0,%%rax)\n"
                         "inc %%ecx\n cmp $4, %%ecx\n jne 1b" :: "r"(first) : "rax", "rcx", "memory");
    } else {
        __asm__ volatile("xor %%ecx, %%ecx\n"
                         "1: mov %%rcx, %%rax\n shl $12, %%rax\n"
                         ".globl unblocked_store\nunblocked_store: movq $9, (%0,%%rax)\n"
                         "inc %%ecx\n cmp $4, %%ecx\n jne 1b" :: "r"(first) : "rax", "rcx", "memory");
    }
}

int main(void) {
    memset(pages, 1, sizeof(pages));
    memset(handler_pages, 1, sizeof(handler_pages));
    printf("pages at %p\n", (void *)pages);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t all, old, now;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, &old);
        store4(pages[0], 1);
        sigprocmask(SIG_BLOCK, NULL, &now);
        int kept = sigismember(&now, SIGTRAP) && sigismember(&now, SIGUSR1);
        (void)old;
        sigset_t none;  // not the inherited mask: the test runner may block SIGUSR1
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        store4(pages[4], 0);
        struct sigaction action;
        memset(&action, 0, sizeof(action));
        action.sa_handler = on_usr1;
        sigfillset(&action.sa_mask);
        sigaction(SIGUSR1, &action, NULL);
        raise(SIGUSR1);
        sigprocmask(SIG_BLOCK, NULL, &now);
        kept = kept && handler_ran && !sigismember(&now, SIGTRAP);
        printf("child mask %s\n", kept ? "kept" : "changed");
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
