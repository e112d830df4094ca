// The child writes one byte to each of 3000 shared pages with the single store at
// `sleep_pages_store` (3000 splits, several of the text log's hand-overs), prints
// "written PID" and sleeps until killed: its lines must reach the log while it sleeps (the
// periodic flush), and all be there however cowtrace ends (interrupted, its guardian killed).
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGES 3000
volatile char pages[PAGES * 4096] __attribute__((aligned(4096))) = {1};

int main(void) {
    // Interrupted as from a terminal, whatever a test runner or shell handed down.
    int ended[] = {SIGINT, SIGTERM, SIGHUP};
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int i = 0; i < 3; i++) {
        signal(ended[i], SIG_DFL);
        sigaddset(&unblock, ended[i]);
    }
    sigprocmask(SIG_UNBLOCK, &unblock, NULL);
    for (int i = 0; i < PAGES; i++) pages[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        volatile char *p = pages;
        for (int i = 0; i < PAGES; i++) {
            __asm__ volatile(".globl sleep_pages_store\nsleep_pages_store:\n\tmovb $2, (%0)" : : "r"(p + (long)i * 4096) : "memory");
        }
        printf("written %d\n", getpid());
        fflush(stdout);
        for (int i = 0; i < 600; i++) usleep(100000);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
