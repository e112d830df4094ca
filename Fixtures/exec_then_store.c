// Forks a child that exits at once (then nothing is shared, and a tracer may park what it
// watches this process with), then execs the program named in argv[1] in the same pid:
// the tests exec parent_store, whose copy after its own fork must be caught like any other
// (a perf event kept from before the exec counts nothing: the kernel removes it there).
#include <sys/wait.h>
#include <unistd.h>

volatile long before[512] __attribute__((aligned(4096))) = {1};

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    before[0] = 0x1111;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, 0, 0);
    before[1] = 0x2222;  // nothing shared: no split
    execv(argv[1], argv + 1);
    return 2;
}
