// posix_spawn: glibc uses clone3(CLONE_VM|CLONE_VFORK) and execs /bin/true.
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(void) {
    char *argv[] = {"/bin/true", 0};
    pid_t pid;
    if (posix_spawn(&pid, "/bin/true", 0, 0, argv, environ) != 0) return 2;
    int status = 0;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}
