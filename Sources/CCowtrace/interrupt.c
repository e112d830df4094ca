#include "CCowtrace.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t interrupt_signal = 0;
static volatile sig_atomic_t interrupt_count = 0;
static volatile sig_atomic_t interrupt_from_terminal = 0;

static void record(int sig, siginfo_t *info, void *context) {
    (void)context;
    interrupt_signal = sig;
    // The terminal's Ctrl-C / Ctrl-\ reach the whole foreground process group: the program
    // in it has had the signal too.
    interrupt_from_terminal = info != NULL && info->si_code == SI_KERNEL;
    interrupt_count++;
}

void cow_install_interrupt_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = record;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;  // no SA_RESTART: waitpid must return EINTR
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, NULL);
    // A parent (a test runner, a shell script) may have handed us a blocked mask.
    sigset_t mask;
    sigemptyset(&mask);
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaddset(&mask, sigs[i]);
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
}

int cow_interrupt_signal(void) { return interrupt_signal; }
int cow_interrupt_count(void) { return interrupt_count; }
int cow_interrupt_from_terminal(void) { return interrupt_from_terminal; }
