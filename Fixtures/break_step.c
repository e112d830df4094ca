// What a break's single step can run into (issue: the step's own status must not be lost).
// argv[1] picks the case; in each the child's store at the global label `break_store` is
// the split the break stops at.
//   cross:  an 8-byte store 4 bytes before the end of a shared page: it copies that page and
//           the next one, two page faults in one instruction.
//   signal: a 1 ms interval timer keeps a SIGALRM pending while the child sits at the break; the
//           child's handler counts them and the child exits 0 only if one arrived.
//   exit:   a second thread spins until the store lands, then calls exit_group: the writer
//           ends around its step.
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

volatile char area[2 * 4096] __attribute__((aligned(4096))) = {1};
static volatile sig_atomic_t alarms;

static void on_alarm(int sig) { (void)sig; alarms++; }

static void store(void) {
    __asm__ volatile(".globl break_store\nbreak_store:\n\tmovq %1, (%0)"
                     : : "r"(area + 4096 - 4), "r"(0x1122334455667788UL) : "memory");
}

static void *ender(void *arg) {
    (void)arg;
    while (area[4092] == 0) {}
    syscall(SYS_exit_group, 7);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "cross";
    area[0] = 1;
    area[4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(mode, "signal") == 0) {
            signal(SIGALRM, on_alarm);
            sigset_t alrm;  // a test runner may hand down a blocked mask
            sigemptyset(&alrm);
            sigaddset(&alrm, SIGALRM);
            sigprocmask(SIG_UNBLOCK, &alrm, 0);
            struct itimerval every = {{0, 1000}, {0, 1000}};
            setitimer(ITIMER_REAL, &every, 0);
            store();
            struct itimerval off = {{0, 0}, {0, 0}};
            setitimer(ITIMER_REAL, &off, 0);
            _exit(alarms > 0 ? 0 : 3);
        }
        if (strcmp(mode, "exit") == 0) {
            pthread_t t;
            pthread_create(&t, 0, ender, 0);
            store();
            for (;;) pause();
        }
        store();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
