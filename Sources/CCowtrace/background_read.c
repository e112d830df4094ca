// A whole file read on a thread of its own, so a slow /proc file (kallsyms: the kernel
// formats some 120,000 lines, tens of milliseconds) is read while the tracer works, not
// when a split first needs it.
#include "CCowtrace.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cow_background_read {
    pthread_t thread;
    char *path;
    unsigned char *bytes;
    size_t size;
};

static void *read_all(void *arg) {
    cow_background_read *r = arg;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t capacity = 1 << 20;
    r->bytes = malloc(capacity);
    while (r->bytes) {
        if (r->size == capacity) {
            unsigned char *grown = realloc(r->bytes, capacity * 2);
            if (!grown) break;
            r->bytes = grown;
            capacity *= 2;
        }
        ssize_t n = read(fd, r->bytes + r->size, capacity - r->size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        r->size += (size_t)n;
    }
    close(fd);
    return NULL;
}

cow_background_read *cow_background_read_start(const char *path) {
    cow_background_read *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->path = strdup(path);
    if (!r->path || pthread_create(&r->thread, NULL, read_all, r) != 0) {
        free(r->path);
        free(r);
        return NULL;
    }
    return r;
}

unsigned char *cow_background_read_finish(cow_background_read *r, size_t *size) {
    *size = 0;
    if (!r) return NULL;
    pthread_join(r->thread, NULL);
    unsigned char *bytes = r->bytes;
    *size = r->size;
    free(r->path);
    free(r);
    return bytes;
}
