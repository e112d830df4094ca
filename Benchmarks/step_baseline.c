// The stepping benchmark's baseline: the same ptrace work as cowtrace's step engine, in
// plain C. Runs PROGRAM under ptrace; from its first fork on, single-steps every process
// (PTRACE_SINGLESTEP + waitpid) and reads the pagemap entry of PAGE after every step
// (one pread). Prints "steps N seconds S".
//   usage: step_baseline PAGE PROGRAM [ARGS...]
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int pagemap_fd(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
    return open(path, O_RDONLY);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    uint64_t page = strtoull(argv[1], NULL, 0);
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execv(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, __WALL);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    int fds[65536] = {0};
    long steps = 0;
    int stepping = 0, live = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (live > 0) {
        pid_t p = waitpid(-1, &status, __WALL);
        if (p < 0) break;
        if (WIFEXITED(status) || WIFSIGNALED(status)) { live--; continue; }
        int sig = WSTOPSIG(status), event = status >> 16;
        int deliver = 0;
        if (event == PTRACE_EVENT_FORK) {
            stepping = 1;
            live++;
        } else if (sig == SIGTRAP && stepping) {
            steps++;
            uint64_t entry;
            if (!fds[p]) fds[p] = pagemap_fd(p);
            pread(fds[p], &entry, 8, (page / 4096) * 8);
        } else if (sig != SIGSTOP && sig != SIGTRAP) {
            deliver = sig;
        }
        ptrace(stepping ? PTRACE_SINGLESTEP : PTRACE_CONT, p, 0, deliver);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("steps %ld seconds %.3f\n", steps, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
