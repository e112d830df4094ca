// A second thread of the parent stores into a shared page (at the global asm label
// `thread_store`) while the main thread makes syscalls: the copy is the thread's store, not
// the main thread's syscall, even when the main thread's next syscall stop comes first.
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};
volatile int go __attribute__((aligned(4096)));

static void *writer(void *arg) {
    (void)arg;
    while (!go) {}
    __asm__ volatile(".globl thread_store\nthread_store:\n\tmovq $0x4444, %0" : "=m"(target[8]));
    return 0;
}

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    target[0] = 0x1111;
    pthread_t thread;
    pthread_create(&thread, 0, writer, 0);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        read(fds[0], &c, 1);  // keeps the child, and its copy of the page, alive
        _exit(target[8] == 0 ? 0 : 1);
    }
    go = 1;
    for (int i = 0; i < 2000; i++) getppid();
    pthread_join(thread, 0);
    write(fds[1], "x", 1);
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
