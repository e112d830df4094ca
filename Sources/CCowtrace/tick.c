#include "CCowtrace.h"
#include <signal.h>
#include <string.h>
#include <sys/time.h>

// A periodic SIGALRM that interrupts the tracer's blocking waitpid, so the logs are flushed
// and the status line redrawn even while every tracee runs without stopping.
static volatile sig_atomic_t ticked = 0;

static void on_alarm(int sig) {
    (void)sig;
    ticked = 1;
}

int cow_tick_start(long interval_ms) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: waitpid must return EINTR
    if (sigaction(SIGALRM, &sa, NULL) < 0) return -1;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    it.it_interval.tv_sec = interval_ms / 1000;
    it.it_interval.tv_usec = (interval_ms % 1000) * 1000;
    it.it_value = it.it_interval;
    return setitimer(ITIMER_REAL, &it, NULL);
}

int cow_tick_stop(void) {
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    return setitimer(ITIMER_REAL, &it, NULL);
}

int cow_tick_take(void) {
    if (!ticked) return 0;
    ticked = 0;
    return 1;
}
