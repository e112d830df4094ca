// Scenario 6, memory that is never copied on write. MODE selects one:
//   shared    MAP_SHARED memory written by the child after fork
//   dontneed  the child drops the page with MADV_DONTNEED, then writes it (a fresh page)
//   exec      the child execs /bin/true
//   vfork     vfork: the child borrows the parent's memory
//   thread    a thread writes the page
// The page in question is `page` (a pointer printed by nm as `page_address` is not
// possible for mmap, so the fixture prints it on stdout).
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long target[512] __attribute__((aligned(4096))) = {1};

static void *thread_main(void *arg) {
    ((volatile long *)arg)[8] = 0x5555;
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "shared";
    volatile long *page = target;
    if (strcmp(mode, "shared") == 0) {
        page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }
    page[0] = 0x1111;
    printf("%p\n", (void *)page);
    fflush(stdout);
    if (strcmp(mode, "thread") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, thread_main, (void *)page);
        pthread_join(t, NULL);
        return page[8] == 0x5555 ? 0 : 1;
    }
    if (strcmp(mode, "vfork") == 0) {
        pid_t pid = vfork();
        if (pid == 0) _exit(0);
        waitpid(pid, 0, 0);
        return 0;
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (strcmp(mode, "exec") == 0) {
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        if (strcmp(mode, "dontneed") == 0) madvise((void *)page, 4096, MADV_DONTNEED);
        page[8] = 0x5555;
        _exit(0);
    }
    waitpid(pid, 0, 0);
    return 0;
}
