// The child asks how many bytes wait in a pipe (ioctl FIONREAD) with the answer going to an
// int on a shared page, at the global `pending`: the kernel's store inside ioctl copies the
// page (cause syscall ioctl). FIONREAD stores 4 bytes at its argument, a bounded store: no
// full sweep is needed at the call's entry or exit.
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

int pending[1024] __attribute__((aligned(4096))) = {1};

int main(void) {
    int fds[2];
    if (pipe(fds) != 0) return 2;
    pending[0] = 1;
    if (write(fds[1], "hello", 5) != 5) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        int r = ioctl(fds[0], FIONREAD, &pending[10]);
        _exit(r == 0 && pending[10] == 5 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
