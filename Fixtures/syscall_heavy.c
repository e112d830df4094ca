// Never forks; makes COUNT cheap syscalls (getppid).
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 200000;
    long sum = 0;
    for (long i = 0; i < count; i++) sum += syscall(SYS_getppid);
    return sum > 0 ? 0 : 1;
}
