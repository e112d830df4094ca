// For attach tests: prints its pid, then forks a child every time it gets SIGUSR1 and
// otherwise sleeps. Runs until killed or until `seconds` pass.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t want_fork;
static void on_usr1(int sig) { (void)sig; want_fork = 1; }

int main(int argc, char **argv) {
    int seconds = argc > 1 ? atoi(argv[1]) : 30;
    signal(SIGUSR1, on_usr1);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    // SIGINT and SIGTERM as from a terminal, whatever mask a test runner handed down.
    sigaddset(&usr1, SIGINT);
    sigaddset(&usr1, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &usr1, NULL);
    printf("%d\n", getpid());
    fflush(stdout);
    for (int i = 0; i < seconds * 10; i++) {
        usleep(100000);
        if (want_fork) {
            want_fork = 0;
            pid_t pid = fork();
            if (pid == 0) _exit(0);
            waitpid(pid, NULL, 0);
        }
    }
    return 0;
}
