// A forked child starts a thread (clone with CLONE_VM | CLONE_THREAD | CLONE_CHILD_SETTID)
// whose tid the kernel stores at `thread_tid`, on a page still shared with the parent: the
// copy is the kernel's CLONE_CHILD_SETTID store, made before the thread's first instruction.
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t thread_tid[1024] __attribute__((aligned(4096))) = {1};
static char stack[64 * 1024] __attribute__((aligned(16)));

static int thread(void *arg) {
    *(volatile int *)arg = 1;
    return 0;
}

int main(void) {
    thread_tid[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        volatile int *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (done == MAP_FAILED) _exit(2);
        pid_t t = clone(thread, stack + sizeof stack, CLONE_VM | CLONE_THREAD | CLONE_SIGHAND | CLONE_CHILD_SETTID,
                        (void *)done, NULL, NULL, &thread_tid[8]);
        if (t < 0) _exit(2);
        while (!*done) sched_yield();
        _exit(thread_tid[8] == t ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
