// A multi-threaded process that forks in a loop until one of its threads SIGKILLs the whole
// process after argv[1] microseconds: the kill lands anywhere, often inside a fork while the
// other thread is held. cowtrace must end with the program's status (killed by SIGKILL).
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *killer(void *arg) {
    usleep(atoi((char *)arg));
    kill(getpid(), SIGKILL);
    return 0;
}

int main(int argc, char **argv) {
    pthread_t thread;
    pthread_create(&thread, 0, killer, argc > 1 ? argv[1] : "5000");
    for (;;) {
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        waitpid(pid, 0, 0);
    }
}
