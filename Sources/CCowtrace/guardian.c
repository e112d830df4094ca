#include "CCowtrace.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

// cowtrace SIGKILLed while it holds tracees would let them go at a bad moment: the kernel
// detaches them, and a trap of ours queued or being reported (a perf sigtrap, a single
// step) is then delivered to the program and kills it. So the process the user sees (and
// kills) is a guardian: the tracing runs in its child, which learns of the guardian's death
// (PR_SET_PDEATHSIG, SIGHUP) and lets go cleanly, as for any interruption.

static pid_t tracer_pid;
static pid_t guardian_pid;

static void forward(int sig, siginfo_t *info, void *context) {
    (void)context;
    // The terminal sends Ctrl-C and Ctrl-\ to the whole process group: the tracer has it.
    if (info != NULL && info->si_code == SI_KERNEL) return;
    kill(tracer_pid, sig);
}

int cow_run_guarded(void) {
    pid_t guardian = getpid();
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return -1;  // unguarded, but running
    }
    if (pid == 0) {
        guardian_pid = guardian;
        cow_install_interrupt_handlers();
        prctl(PR_SET_PDEATHSIG, SIGHUP);
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (getppid() != guardian) kill(getpid(), SIGHUP);  // it died before the prctl
        return 0;
    }
    tracer_pid = pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, NULL);
    sigset_t forwarded;
    sigemptyset(&forwarded);
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaddset(&forwarded, sigs[i]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigprocmask(SIG_UNBLOCK, &forwarded, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) _exit(1);
    }
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    _exit(128 + sig);
}

pid_t cow_guardian(void) { return guardian_pid; }
