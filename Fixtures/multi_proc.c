// Three children, each writing a line and exiting with its own code; the parent reaps them.
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    for (int i = 1; i <= 3; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char line[32];
            int n = snprintf(line, sizeof line, "child %d\n", i);
            write(1, line, n);
            _exit(i);
        }
    }
    int sum = 0;
    for (int i = 0; i < 3; i++) {
        int status = 0;
        wait(&status);
        sum += WEXITSTATUS(status);
    }
    return sum == 6 ? 0 : 1;
}
