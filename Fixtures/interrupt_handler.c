// For Ctrl-C on a launched program: forks a child that sleeps (printing "child PID"), then
// waits for SIGINT; its handler makes it print "handler ran" and exit with status 3.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static void on_int(int sig) { (void)sig; interrupted = 1; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_int;
    sigaction(SIGINT, &sa, NULL);
    // Whatever mask the caller (a test runner) handed down: SIGINT must arrive.
    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);
    sigprocmask(SIG_UNBLOCK, &interrupt, NULL);
    pid_t child = fork();
    if (child == 0) {
        sleep(30);
        _exit(0);
    }
    printf("%d\nchild %d\n", getpid(), child);
    fflush(stdout);
    while (!interrupted) pause();
    printf("handler ran\n");
    fflush(stdout);
    return 3;
}
