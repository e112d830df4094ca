// For the stepping benchmark: after fork the child spins reading a shared page (so it is
// stepped the whole time) and exits; the parent waits. ITERATIONS from argv[1].
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

volatile long watched[512] __attribute__((aligned(4096))) = {1};

int main(int argc, char **argv) {
    long iterations = argc > 1 ? atol(argv[1]) : 50000;
    watched[0] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        long sum = 0;
        for (long i = 0; i < iterations; i++) sum += watched[0];
        _exit(sum == iterations ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
