#include "CCowtrace.h"
#include <sys/wait.h>

int cow_wifexited(int status) { return WIFEXITED(status); }
int cow_wexitstatus(int status) { return WEXITSTATUS(status); }
int cow_wifsignaled(int status) { return WIFSIGNALED(status); }
int cow_wtermsig(int status) { return WTERMSIG(status); }
int cow_wcoredump(int status) { return WCOREDUMP(status); }
int cow_wifstopped(int status) { return WIFSTOPPED(status); }
int cow_wstopsig(int status) { return WSTOPSIG(status); }
int cow_wifcontinued(int status) { return WIFCONTINUED(status); }
const int cow_WALL = __WALL;
