// The record engine's collection: per-thread perf events writing page-fault samples into
// one mmap'd ring buffer per CPU, drained by a reader thread (and by the tracer before it
// looks) into compact records, each unwound at once over its stack copy. Losses are counted,
// never hidden. The buffers are mapped once, when the recorder is made, and each tracepoint
// stays registered (an anchor event) until it is destroyed: adding and removing a thread
// while the program is stopped at a fork or an exit costs a few event opens or closes, not
// megabytes of buffer to allocate and free nor the RCU grace periods of a tracepoint's last
// user going away (tens of milliseconds each, measured on Redis).
#include "CCowtrace.h"
#include "sample_unwind.h"
#include <errno.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// x86-64 perf register numbers sampled: ax bx cx dx si di bp sp ip flags, then r8..r15
// (the segment registers ds/es/fs/gs are refused on 64-bit).
#define REGS_MASK 0xff03ffULL
#define REG_COUNT 18

// One per CPU: every thread's events on that CPU write into it (PERF_EVENT_IOC_SET_OUTPUT
// to `fd`, a dummy event of the recorder's own thread on that CPU).
struct ring {
    int cpu;
    int fd;
    void *base;
    size_t length;
    uint64_t lost_records;  // PERF_RECORD_LOST records read from it
};

// A thread's events: one per CPU for each kind (user faults, kernel faults, syscall entries).
struct thread_events {
    pid_t tid;
    int count;
    int fds[];
};

struct cow_recorder {
    pthread_mutex_t lock;
    pthread_t thread;
    int running, stop;
    int wake;  // eventfd: a thread added (or the end) wakes a reader asleep with nothing recorded
    struct ring *rings;  // per CPU, mapped at the first thread added
    int ring_count;
    struct thread_events **threads;
    int thread_count;
    int anchors[3];  // the tracepoints' registrations, held for the recorder's life
    int pages, stack_bytes;
    uint64_t tracepoint_user, tracepoint_kernel, tracepoint_syscalls;
    cow_sample *out;
    size_t out_count, out_capacity;
    uint64_t lost_closed;  // losses counted by events already closed
    pthread_t tracer;      // the thread blocked in waitpid, when `waiting`
    int waiting;
    uint64_t last_kick, last_take;
    uint64_t samples;
    cow_sample_unwinder *unwinder;
    unsigned char scratch[65536];  // a record that wraps around the end of its buffer
};

static long perf_event_open(struct perf_event_attr *attr, pid_t tid, int cpu) {
    return syscall(SYS_perf_event_open, attr, tid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

cow_recorder *cow_recorder_create(int buffer_pages, int stack_bytes, uint64_t tracepoint_user, uint64_t tracepoint_kernel,
                                  uint64_t tracepoint_syscalls) {
    cow_recorder *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->pages = buffer_pages;
    r->stack_bytes = stack_bytes & ~7;
    r->tracepoint_user = tracepoint_user;
    r->tracepoint_kernel = tracepoint_kernel;
    r->tracepoint_syscalls = tracepoint_syscalls;
    r->unwinder = cow_sample_unwinder_create();
    r->anchors[0] = r->anchors[1] = r->anchors[2] = -1;
    r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return r;
}

static uint64_t read_lost(int fd) {
    uint64_t values[2] = {0, 0};  // PERF_FORMAT_LOST: { value, lost }
    if (fd < 0 || read(fd, values, sizeof values) != (ssize_t)sizeof values) return 0;
    return values[1];
}

static uint64_t thread_lost(const struct thread_events *t) {
    uint64_t lost = 0;
    for (int i = 0; i < t->count; i++) lost += read_lost(t->fds[i]);
    return lost;
}

static void close_thread(struct thread_events *t) {
    for (int i = 0; i < t->count; i++) {
        if (t->fds[i] >= 0) close(t->fds[i]);
    }
    free(t);
}

static void close_ring(struct ring *ring) {
    if (ring->base) munmap(ring->base, ring->length);
    if (ring->fd >= 0) close(ring->fd);
    ring->base = NULL;
    ring->fd = -1;
}

static void wake_reader(cow_recorder *r) {
    uint64_t one = 1;
    if (r->wake >= 0 && write(r->wake, &one, sizeof one) < 0) { /* already signalled: the counter is not 0 */ }
}

void cow_recorder_destroy(cow_recorder *r) {
    if (!r) return;
    if (r->running) {
        pthread_mutex_lock(&r->lock);
        r->stop = 1;
        pthread_mutex_unlock(&r->lock);
        wake_reader(r);
        pthread_join(r->thread, NULL);
    }
    if (r->wake >= 0) close(r->wake);
    // The threads' events before the buffers they write into, the anchors last.
    for (int i = 0; i < r->thread_count; i++) close_thread(r->threads[i]);
    free(r->threads);
    for (int i = 0; i < r->ring_count; i++) close_ring(&r->rings[i]);
    free(r->rings);
    for (int i = 0; i < 3; i++) {
        if (r->anchors[i] >= 0) close(r->anchors[i]);
    }
    free(r->out);
    cow_sample_unwinder_destroy(r->unwinder);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

// ---- parsing --------------------------------------------------------------------

static void take_u64(const unsigned char **p, uint64_t *out) {
    memcpy(out, *p, sizeof(*out));
    *p += sizeof(*out);
}

static void keep(cow_recorder *r, const cow_sample *s) {
    if (r->out_count == r->out_capacity) {
        size_t capacity = r->out_capacity ? r->out_capacity * 2 : 1024;
        cow_sample *grown = realloc(r->out, sizeof(*grown) * capacity);
        if (!grown) return;
        r->out = grown;
        r->out_capacity = capacity;
    }
    r->out[r->out_count++] = *s;
}

static void handle_sample(cow_recorder *r, const unsigned char *p, const unsigned char *end) {
    cow_sample s;
    memset(&s, 0, sizeof s);
    uint32_t ids[2];
    memcpy(ids, p, sizeof ids);
    p += sizeof ids;
    s.pid = (int32_t)ids[0];
    s.tid = (int32_t)ids[1];
    take_u64(&p, &s.time);
    take_u64(&p, &s.address);
    s.error_code = UINT64_MAX;
    if (r->tracepoint_syscalls) {
        uint64_t n;
        take_u64(&p, &n);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t ip;
            take_u64(&p, &ip);
            // PERF_CONTEXT_* markers are the top 4095 values.
            if (ip >= (uint64_t)-4095 || s.kernel_frame_count >= COW_SAMPLE_FRAMES) continue;
            s.kernel_frames[s.kernel_frame_count++] = ip;
        }
    }
    if (r->tracepoint_user) {
        uint32_t size;
        memcpy(&size, p, sizeof size);
        const unsigned char *raw = p + sizeof size;
        // The common header (8 bytes: type, flags, preempt count, pid), then address, ip, error_code.
        if (size >= 32) {
            uint16_t type;
            memcpy(&type, raw, sizeof type);
            if (r->tracepoint_syscalls && type == r->tracepoint_syscalls && size >= 64) {
                s.kernel = 2;
                memcpy(&s.address, raw + 8, 8);
                memcpy(s.args, raw + 16, sizeof s.args);
            } else {
                s.kernel = type == r->tracepoint_kernel;
                memcpy(&s.address, raw + 8, 8);
                memcpy(&s.error_code, raw + 24, 8);
            }
        }
        p = raw + size;
    }
    uint64_t abi;
    take_u64(&p, &abi);
    uint64_t regs[REG_COUNT];
    if (abi == 0) return;  // no user registers: not a user thread's fault
    memcpy(regs, p, sizeof regs);
    p += sizeof regs;
    struct user_regs_struct *u = &s.regs;
    u->rax = regs[0]; u->rbx = regs[1]; u->rcx = regs[2]; u->rdx = regs[3];
    u->rsi = regs[4]; u->rdi = regs[5]; u->rbp = regs[6]; u->rsp = regs[7];
    u->rip = regs[8]; u->eflags = regs[9];
    u->r8 = regs[10]; u->r9 = regs[11]; u->r10 = regs[12]; u->r11 = regs[13];
    u->r12 = regs[14]; u->r13 = regs[15]; u->r14 = regs[16]; u->r15 = regs[17];
    uint64_t stack_size = 0, dynamic_size = 0;
    const unsigned char *stack = NULL;
    take_u64(&p, &stack_size);
    if (stack_size > 0 && p + stack_size + 8 <= end) {
        stack = p;
        memcpy(&dynamic_size, p + stack_size, sizeof dynamic_size);
        if (dynamic_size > stack_size) dynamic_size = stack_size;
    }
    r->samples++;
    // The kernel's stores are attributed at the tracees' syscall stops, from their registers.
    if (s.kernel != 2 && stack && (!s.kernel || r->tracepoint_syscalls)) {
        s.frame_count = cow_sample_unwind(r->unwinder, s.pid, &s.regs, stack, dynamic_size, s.frames, COW_SAMPLE_FRAMES);
    }
    keep(r, &s);
}

// Returns the bytes that were waiting in the buffer.
static uint64_t drain_ring(cow_recorder *r, struct ring *ring) {
    if (!ring->base) return 0;
    struct perf_event_mmap_page *meta = ring->base;
    unsigned char *data = (unsigned char *)ring->base + (meta->data_offset ? meta->data_offset : 4096);
    uint64_t size = meta->data_size ? meta->data_size : (uint64_t)r->pages * 4096;
    uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = meta->data_tail;
    uint64_t waiting = head - tail;
    while (tail + sizeof(struct perf_event_header) <= head) {
        struct perf_event_header h;
        memcpy(&h, data + (tail % size), sizeof h);  // records are 8-aligned: a header never wraps
        if (h.size < sizeof h || tail + h.size > head) break;
        const unsigned char *record = data + (tail % size);
        if ((tail % size) + h.size > size) {
            uint64_t first = size - (tail % size);
            memcpy(r->scratch, data + (tail % size), first);
            memcpy(r->scratch + first, data, h.size - first);
            record = r->scratch;
        }
        if (h.type == PERF_RECORD_SAMPLE) {
            handle_sample(r, record + sizeof h, record + h.size);
        } else if (h.type == PERF_RECORD_LOST) {
            uint64_t lost;
            memcpy(&lost, record + sizeof h + 8, sizeof lost);  // { id, lost }
            ring->lost_records += lost;
        }
        tail += h.size;
        // Space is given back record by record: unwinding a long backlog must not keep the
        // kernel from writing (it drops samples into a buffer it sees full).
        __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
    }
    return waiting * 4 >= size ? waiting : 0;
}

// Whether some buffer was a quarter full or more: then the reader goes on at once.
static int drain_all(cow_recorder *r) {
    int busy = 0;
    for (int i = 0; i < r->ring_count; i++) busy |= drain_ring(r, &r->rings[i]) != 0;
    return busy;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Samples are waiting and the tracer is blocked in waitpid: interrupt it, at most every
// millisecond, as soon as a batch is worth replaying (or has waited 5 ms).
static void kick(cow_recorder *r) {
    if (!r->waiting || r->out_count == 0) return;
    uint64_t now = now_ns();
    if ((r->out_count >= 256 || now - r->last_take >= 5000000u) && now - r->last_kick >= 1000000u) {
        r->last_kick = now;
        pthread_kill(r->tracer, SIGURG);
    }
}

int cow_raise_priority(int steps) {
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, tid);
    if (nice == -1 && errno != 0) return -1;
    int raised = nice - steps < -20 ? -20 : nice - steps;
    return setpriority(PRIO_PROCESS, tid, raised);
}

static void *reader(void *arg) {
    cow_recorder *r = arg;
    // A reader starved of CPU loses samples: as root it runs ahead of the program (and of
    // whatever ran at cowtrace's own priority).
    cow_raise_priority(10);
    struct pollfd *fds = NULL;
    int capacity = 0;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        int stop = r->stop, busy = 0, count = 0;
        if (!stop) {
            busy = drain_all(r);
            kick(r);
            if (capacity < r->ring_count + 1) {
                struct pollfd *grown = realloc(fds, sizeof(*grown) * (size_t)(r->ring_count + 1));
                if (grown) {
                    fds = grown;
                    capacity = r->ring_count + 1;
                }
            }
            if (capacity > 0) fds[count++] = (struct pollfd){r->wake, POLLIN, 0};
            for (int i = 0; i < r->ring_count && count < capacity; i++) {
                if (r->rings[i].base) fds[count++] = (struct pollfd){r->rings[i].fd, POLLIN, 0};
            }
        }
        int pending = r->out_count > 0 && r->waiting;
        int idle = r->thread_count == 0 && r->out_count == 0 && r->wake >= 0;
        pthread_mutex_unlock(&r->lock);
        if (stop) break;
        if (busy) continue;
        // The kernel wakes the reader when a buffer is a quarter full (wakeup_watermark: some
        // 480 samples of 8.4 KB in 16 MiB), else it looks every few ms: no wake-up per
        // sample. Samples waiting for a blocked tracer are handed over within a few ms (kick).
        // While no thread is recorded (a server attached, waiting for its next fork) it
        // sleeps until one is added.
        if (count == 0) idle = 0;  // no room for the eventfd: look every few ms instead
        if (poll(fds, (nfds_t)count, idle ? -1 : pending ? 1 : 4) > 0 && (fds[0].revents & POLLIN)) {
            uint64_t value;
            if (read(r->wake, &value, sizeof value) < 0) { /* EAGAIN: another read took it */ }
        }
    }
    free(fds);
    return NULL;
}

static void interrupted(int sig) { (void)sig; }

void cow_recorder_waiting(cow_recorder *r) {
    pthread_mutex_lock(&r->lock);
    r->tracer = pthread_self();
    r->waiting = 1;
    pthread_mutex_unlock(&r->lock);
}

int cow_recorder_start(cow_recorder *r) {
    if (r->running) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = interrupted;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the tracer's waitpid returns EINTR
    sigaction(SIGURG, &sa, NULL);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGURG);
    pthread_sigmask(SIG_UNBLOCK, &mask, NULL);
    int rc = pthread_create(&r->thread, NULL, reader, r);
    if (rc == 0) r->running = 1;
    return rc;
}

// ---- events --------------------------------------------------------------------

static void clocked(struct perf_event_attr *a) {
    a->use_clockid = 1;  // one clock for every event writing into a buffer (the kernel insists)
    a->clockid = CLOCK_MONOTONIC;
}

static void attributes(cow_recorder *r, struct perf_event_attr *a, uint64_t tracepoint) {
    memset(a, 0, sizeof(*a));
    a->size = sizeof(*a);
    if (tracepoint) {
        a->type = PERF_TYPE_TRACEPOINT;
        a->config = tracepoint;
    } else {
        a->type = PERF_TYPE_SOFTWARE;
        a->config = PERF_COUNT_SW_PAGE_FAULTS;
        a->exclude_kernel = 1;
    }
    a->sample_period = 1;
    a->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR | (tracepoint ? PERF_SAMPLE_RAW : 0) |
                     PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER | (r->tracepoint_syscalls ? PERF_SAMPLE_CALLCHAIN : 0);
    a->exclude_callchain_user = 1;
    a->sample_max_stack = COW_SAMPLE_FRAMES;
    a->sample_regs_user = REGS_MASK;
    a->sample_stack_user = (uint32_t)r->stack_bytes;
    a->read_format = PERF_FORMAT_LOST;
    a->exclude_hv = 1;
    clocked(a);
}

static const char filter[] = "(error_code & 1) && (error_code & 2)";
// The calls that take pages out of an address space: mmap (over a mapping), munmap, mremap, madvise.
static const char mapping_calls[] = "id == 9 || id == 11 || id == 25 || id == 28";

// The buffers, one per CPU, each owned by a dummy event of the calling thread on that CPU
// (per-CPU buffers may take the events of any task; it never samples). Without privileges
// they count against perf_event_mlock_kb and RLIMIT_MEMLOCK (EPERM past them): smaller
// buffers are better than none (their losses are counted). Called with the lock held.
static int open_rings(cow_recorder *r) {
    int cpus = (int)sysconf(_SC_NPROCESSORS_CONF);
    if (cpus < 1) cpus = 1;
    for (int pages = r->pages;; pages /= 2) {
        struct ring *rings = calloc((size_t)cpus, sizeof(*rings));
        if (!rings) return -1;
        int count = 0, failure = 0;
        for (int cpu = 0; cpu < cpus; cpu++) {
            struct perf_event_attr a;
            memset(&a, 0, sizeof a);
            a.size = sizeof a;
            a.type = PERF_TYPE_SOFTWARE;
            a.config = PERF_COUNT_SW_DUMMY;
            a.exclude_kernel = 1;
            a.exclude_hv = 1;
            a.watermark = 1;
            a.wakeup_watermark = (uint32_t)((uint64_t)pages * 4096 / 4);
            clocked(&a);
            long fd = perf_event_open(&a, 0, cpu);
            if (fd < 0) {
                if (errno == ENODEV || errno == EINVAL) continue;  // an offline CPU: nothing runs there
                failure = errno;
                break;
            }
            struct ring ring = {cpu, (int)fd, NULL, (size_t)(pages + 1) * 4096, 0};
            ring.base = mmap(NULL, ring.length, PROT_READ | PROT_WRITE, MAP_SHARED, ring.fd, 0);
            if (ring.base == MAP_FAILED) {
                failure = errno;
                ring.base = NULL;
                close_ring(&ring);
                break;
            }
            rings[count++] = ring;
        }
        if (!failure && count > 0) {
            r->rings = rings;
            r->ring_count = count;
            r->pages = pages;
            return 0;
        }
        for (int i = 0; i < count; i++) close_ring(&rings[i]);
        free(rings);
        if (failure != EPERM || pages == 1) {
            errno = failure ? failure : ENODEV;
            return -1;
        }
    }
}

// One disabled event per tracepoint on the recorder's own thread: while it is open the
// tracepoint stays registered, so the threads' events come and go without registering it
// again or waiting for the grace periods of its unregistration.
static void open_anchors(cow_recorder *r) {
    uint64_t ids[3] = {r->tracepoint_user, r->tracepoint_kernel, r->tracepoint_syscalls};
    for (int i = 0; i < 3; i++) {
        if (!ids[i] || r->anchors[i] >= 0) continue;
        struct perf_event_attr a;
        attributes(r, &a, ids[i]);
        a.disabled = 1;
        long fd = perf_event_open(&a, 0, -1);
        if (fd >= 0) r->anchors[i] = (int)fd;
    }
}

// Opens one event of `tracepoint` (0: software page faults) for the thread on each CPU,
// writing into that CPU's buffer.
static int open_kind(cow_recorder *r, struct thread_events *t, pid_t tid, uint64_t tracepoint, const char *events_filter) {
    for (int i = 0; i < r->ring_count; i++) {
        struct perf_event_attr a;
        attributes(r, &a, tracepoint);
        long fd = perf_event_open(&a, tid, r->rings[i].cpu);
        if (fd < 0) return -1;
        t->fds[t->count++] = (int)fd;
        if (events_filter && ioctl((int)fd, PERF_EVENT_IOC_SET_FILTER, events_filter) != 0) return -1;
        if (ioctl((int)fd, PERF_EVENT_IOC_SET_OUTPUT, r->rings[i].fd) != 0) return -1;
    }
    return 0;
}

int cow_recorder_add_thread(cow_recorder *r, pid_t tid) {
    pthread_mutex_lock(&r->lock);
    if (!r->rings && open_rings(r) != 0) {
        pthread_mutex_unlock(&r->lock);
        return -1;
    }
    open_anchors(r);
    int kinds = 1 + (r->tracepoint_kernel != 0) + (r->tracepoint_syscalls != 0);
    struct thread_events *t = calloc(1, sizeof(*t) + sizeof(int) * (size_t)(kinds * r->ring_count));
    struct thread_events **grown = t ? realloc(r->threads, sizeof(*grown) * (size_t)(r->thread_count + 1)) : NULL;
    if (!t || !grown) {
        free(t);
        pthread_mutex_unlock(&r->lock);
        errno = ENOMEM;
        return -1;
    }
    r->threads = grown;
    t->tid = tid;
    int failed = open_kind(r, t, tid, r->tracepoint_user, r->tracepoint_user ? filter : NULL) != 0 ||
                 (r->tracepoint_kernel && open_kind(r, t, tid, r->tracepoint_kernel, filter) != 0) ||
                 (r->tracepoint_syscalls && open_kind(r, t, tid, r->tracepoint_syscalls, mapping_calls) != 0);
    if (failed) {
        int saved = errno;
        close_thread(t);
        pthread_mutex_unlock(&r->lock);
        errno = saved;
        return -1;
    }
    r->threads[r->thread_count++] = t;
    pthread_mutex_unlock(&r->lock);
    wake_reader(r);
    return 0;
}

int cow_recorder_has_thread(cow_recorder *r, pid_t tid) {
    pthread_mutex_lock(&r->lock);
    int found = 0;
    for (int i = 0; i < r->thread_count && !found; i++) found = r->threads[i]->tid == tid;
    pthread_mutex_unlock(&r->lock);
    return found;
}

void cow_recorder_remove_thread(cow_recorder *r, pid_t tid) {
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->thread_count; i++) {
        if (r->threads[i]->tid != tid) continue;
        // What it wrote stays in the buffers: drained now, handed over at the next take.
        drain_all(r);
        r->lost_closed += thread_lost(r->threads[i]);
        close_thread(r->threads[i]);
        r->threads[i] = r->threads[--r->thread_count];
        break;
    }
    pthread_mutex_unlock(&r->lock);
}

void cow_recorder_maps_changed(cow_recorder *r, pid_t pid) {
    pthread_mutex_lock(&r->lock);
    // Samples taken before the change are unwound against the old mappings first.
    drain_all(r);
    cow_sample_unwinder_stale(r->unwinder, pid);
    pthread_mutex_unlock(&r->lock);
}

cow_sample *cow_recorder_take(cow_recorder *r, size_t *count) {
    pthread_mutex_lock(&r->lock);
    // Only samples taken before the buffers are drained are handed over. A thread's samples
    // are in several buffers (one per CPU it ran on) and one is published before the
    // thread's next fault begins, so a sample from before `cutoff` is in a buffer by the
    // time it is read, and so is every earlier one of its thread: what is handed over
    // never lacks an earlier sample of the same thread (one still being written elsewhere
    // can only be another thread's). Later ones wait for the next take.
    uint64_t cutoff = now_ns();
    drain_all(r);
    r->waiting = 0;
    r->last_take = now_ns();
    size_t ready = 0;
    for (size_t i = 0; i < r->out_count; i++) ready += r->out[i].time < cutoff;
    cow_sample *taken = NULL;
    if (ready == r->out_count) {
        taken = r->out;
        r->out = NULL;
        r->out_count = r->out_capacity = 0;
    } else if (ready > 0 && (taken = malloc(sizeof(*taken) * ready)) != NULL) {
        size_t kept = 0, given = 0;
        for (size_t i = 0; i < r->out_count; i++) {
            if (r->out[i].time < cutoff) taken[given++] = r->out[i];
            else r->out[kept++] = r->out[i];
        }
        r->out_count = kept;
    } else {
        ready = 0;
    }
    *count = ready;
    pthread_mutex_unlock(&r->lock);
    return taken;
}

uint64_t cow_recorder_lost(cow_recorder *r) {
    pthread_mutex_lock(&r->lock);
    uint64_t counted = r->lost_closed, recorded = 0;
    for (int i = 0; i < r->thread_count; i++) counted += thread_lost(r->threads[i]);
    for (int i = 0; i < r->ring_count; i++) recorded += r->rings[i].lost_records;
    pthread_mutex_unlock(&r->lock);
    return counted > recorded ? counted : recorded;
}

uint64_t cow_recorder_samples(cow_recorder *r) {
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->samples;
    pthread_mutex_unlock(&r->lock);
    return n;
}

int cow_mount_tracefs(void) {
    struct stat st;
    if (stat("/sys/kernel/tracing/events", &st) == 0) return 0;
    return mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL);
}
