#include "CCowtrace.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

pid_t cow_spawn_traced(const char *path, char *const argv[], char *const envp[], int *error_fd) {
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
        // Child: async-signal-safe calls only.
        struct sigaction dfl;
        dfl.sa_handler = SIG_DFL;
        dfl.sa_flags = 0;
        sigemptyset(&dfl.sa_mask);
        for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(fds[0]);
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            int err = errno;
            (void)!write(fds[1], &err, sizeof(err));
            _exit(127);
        }
        // A raw kill, not raise(): raise() makes extra syscalls the tracer would log.
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
