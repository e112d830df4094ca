#include "CCowtrace.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

// What cowtrace itself inherited, recorded before anything in it changes a signal (this
// runs before main): the launched program gets the same, as it would untraced. `nohup
// cowtrace prog` keeps SIGHUP ignored; a mask the caller blocked stays blocked.
static sigset_t inherited_mask;
static sigset_t inherited_ignored;

__attribute__((constructor)) static void cow_record_inherited_signals(void) {
    sigemptyset(&inherited_ignored);
    sigprocmask(SIG_BLOCK, NULL, &inherited_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN) {
            sigaddset(&inherited_ignored, sig);
        }
    }
}

pid_t cow_spawn_traced(const char *path, char *const argv[], char *const envp[], int new_session, int *error_fd) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    if (pid == 0) {
        // Child: async-signal-safe calls only. Every disposition back to what cowtrace
        // inherited (handlers cannot survive exec anyway), the inherited mask.
        struct sigaction sa;
        sa.sa_flags = 0;
        sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; sig++) {
            sa.sa_handler = sigismember(&inherited_ignored, sig) == 1 ? SIG_IGN : SIG_DFL;
            sigaction(sig, &sa, NULL);
        }
        sigprocmask(SIG_SETMASK, &inherited_mask, NULL);
        close(fds[0]);
        // A program left stopped at a break must survive cowtrace's exit: in a session of
        // its own its process group is never orphaned by that exit (no SIGHUP + SIGCONT).
        if (new_session) setsid();
        // Stopped until the tracer has seized it (PTRACE_SEIZE, so that group stops can be
        // held with PTRACE_LISTEN) and continued it. A raw kill, not raise(): raise() makes
        // extra syscalls.
        syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
        execve(path, argv, envp);
        int err = errno;
        (void)!write(fds[1], &err, sizeof(err));
        _exit(127);
    }
    close(fds[1]);
    *error_fd = fds[0];
    return pid;
}
