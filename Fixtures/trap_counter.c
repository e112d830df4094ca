// For the "leave no trace" tests: forks in a loop while two threads write pages (one of
// them blocks every signal, as Redis's background threads do), so a tracer's page-fault
// traps and single steps are always under way. Prints its pid, then a line for every
// SIGTRAP it receives and for every fork that fails; on SIGUSR1 it prints "fork ok" after
// its next successful fork (proof that forking still works). Runs for `seconds`. With
// "storm" as argv[2] the main thread forks without pausing and a third thread vforks
// children that exit at once: a tracer that attaches or lets go finds threads inside fork
// (their event stop comes before any stop it asks for) and a parent the kernel holds until
// its vfork child exits (no stop can be asked of it meanwhile).
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES 32
static char buffer[PAGES * 4096];
static volatile sig_atomic_t want_report;

static void say(const char *text) { (void)!write(1, text, strlen(text)); }

static void on_trap(int sig, siginfo_t *info, void *context) {
    (void)sig; (void)context;
    char line[64];
    snprintf(line, sizeof(line), "SIGTRAP code=%d\n", info->si_code);
    say(line);
}

static void on_usr1(int sig) { (void)sig; want_report = 1; }

static void touch(int salt) {
    for (int i = 0; i < PAGES; i++) buffer[i * 4096 + (salt & 63)] = (char)salt;
}

static void *writer(void *blockAll) {
    if (blockAll) {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);
    }
    for (int n = 0;; n++) {
        touch(n);
        usleep(200);
    }
    return NULL;
}

static void *vforker(void *unused) {
    (void)unused;
    for (;;) {
        pid_t pid = vfork();
        if (pid == 0) _exit(0);
        if (pid > 0) {
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 30;
    int storm = argc > 2 && strcmp(argv[2], "storm") == 0;
    // Whatever mask the caller (a test runner) handed down: SIGUSR1 and SIGTRAP must arrive.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_trap;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGTRAP, &sa, NULL);
    signal(SIGUSR1, on_usr1);
    pthread_t a, b;
    pthread_create(&a, NULL, writer, (void *)1);
    pthread_create(&b, NULL, writer, NULL);
    if (storm) {
        pthread_t c;
        pthread_create(&c, NULL, vforker, NULL);
    }
    char line[32];
    snprintf(line, sizeof(line), "%d\n", getpid());
    say(line);
    time_t end = time(NULL) + seconds;
    while (time(NULL) < end) {
        pid_t pid = fork();
        if (pid < 0) {
            snprintf(line, sizeof(line), "fork failed: %d\n", errno);
            say(line);
            usleep(10000);
            continue;
        }
        if (pid == 0) {
            touch(7);
            _exit(0);
        }
        touch(3);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        if (want_report) {
            want_report = 0;
            say("fork ok\n");
        }
        if (!storm) usleep(2000);
    }
    return 0;
}
