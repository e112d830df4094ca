// pthread_create: clone3 with CLONE_VM|CLONE_THREAD|CLONE_PARENT_SETTID|… (no copy-on-write).
#include <pthread.h>
#include <stdio.h>

static volatile long shared_counter;

static void *run(void *arg) {
    shared_counter += (long)arg;
    return NULL;
}

int main(void) {
    pthread_t a, b;
    pthread_create(&a, NULL, run, (void *)1);
    pthread_join(a, NULL);
    pthread_create(&b, NULL, run, (void *)2);
    pthread_join(b, NULL);
    return shared_counter == 3 ? 0 : 1;
}
