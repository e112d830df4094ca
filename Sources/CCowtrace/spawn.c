#include "CCowtrace.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

int cow_install_clone_filter(void);

pid_t cow_spawn_traced(const char *path, char *const argv[], char *const envp[], int only_clones, int new_session,
                       int *error_fd) {
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
        // A program left stopped at a break must survive cowtrace's exit: in a session of
        // its own its process group is never orphaned by that exit (no SIGHUP + SIGCONT).
        if (new_session) setsid();
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            int err = errno;
            (void)!write(fds[1], &err, sizeof(err));
            _exit(127);
        }
        // A raw kill, not raise(): raise() makes extra syscalls the tracer would log.
        syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
        if (only_clones && cow_install_clone_filter() != 0) {
            int err = errno;
            (void)!write(fds[1], &err, sizeof(err));
            _exit(127);
        }
        execve(path, argv, envp);
        int err = errno;
        (void)!write(fds[1], &err, sizeof(err));
        _exit(127);
    }
    close(fds[1]);
    *error_fd = fds[0];
    return pid;
}

// The filter for -q: only clone-family syscalls stop the tracee (SECCOMP_RET_TRACE, seen as
// PTRACE_EVENT_SECCOMP); everything else runs at native speed. Another architecture's
// syscalls (int 0x80, x32) are all traced rather than misread.
int cow_install_clone_filter(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 5, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 4, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_fork, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_vfork, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
    };
    struct sock_fprog program = {sizeof(filter) / sizeof(filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
}
