// The fault-engine benchmark's baseline: the same ptrace work as cowtrace's fault engine, in
// plain C. Runs PROGRAM under ptrace (PTRACE_SYSCALL, like cowtrace); at its first fork opens
// a perf page-fault event with sigtrap on the parent and the child; at each TRAP_PERF stop
// reads the siginfo and the pagemap entry of the faulting page (one pread) and suppresses the
// signal. Prints "faults N seconds S" (from start to the end of the run).
//   usage: fault_baseline PROGRAM [ARGS...]
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void open_event(pid_t tid) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_PAGE_FAULTS;
    attr.sample_period = 1;
    attr.exclude_hv = 1;
    attr.remove_on_exec = 1;
    attr.sigtrap = 1;
    attr.sig_data = 42;
    syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, __WALL);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEFORK | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    ptrace(PTRACE_SYSCALL, pid, 0, 0);
    int fds[65536] = {0};
    long faults = 0;
    int live = 1;
    while (live > 0) {
        pid_t p = waitpid(-1, &status, __WALL);
        if (p < 0) break;
        if (WIFEXITED(status) || WIFSIGNALED(status)) { live--; continue; }
        int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
        if (event == PTRACE_EVENT_FORK) {
            unsigned long child;
            ptrace(PTRACE_GETEVENTMSG, p, 0, &child);
            open_event(p);
            open_event((pid_t)child);
            live++;
        } else if (sig == SIGTRAP && event == 0) {
            siginfo_t info;
            ptrace(PTRACE_GETSIGINFO, p, 0, &info);
            if (info.si_code == 6) {
                faults++;
                uint64_t entry;
                if (!fds[p]) {
                    char path[64];
                    snprintf(path, sizeof path, "/proc/%d/pagemap", p);
                    fds[p] = open(path, O_RDONLY);
                }
                pread(fds[p], &entry, 8, ((uintptr_t)info.si_addr / 4096) * 8);
            } else {
                deliver = sig;
            }
        } else if (sig != SIGSTOP && sig != (SIGTRAP | 0x80) && event == 0) {
            deliver = sig;
        }
        ptrace(PTRACE_SYSCALL, p, 0, deliver);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("faults %ld seconds %.3f\n", faults, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
