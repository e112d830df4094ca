#include "CCowtrace.h"
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

pid_t cow_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int cow_tgkill(pid_t tgid, pid_t tid, int sig) { return (int)syscall(SYS_tgkill, tgid, tid, sig); }

// A software page-fault event on one thread that stops it with SIGTRAP at every fault.
long cow_perf_event_open_pagefaults(pid_t tid, uint64_t cookie, int exclude_kernel, int disabled) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_PAGE_FAULTS;
    attr.sample_period = 1;
    attr.exclude_kernel = exclude_kernel ? 1 : 0;
    attr.exclude_hv = 1;
    attr.disabled = disabled ? 1 : 0;
    attr.remove_on_exec = 1;
    attr.sigtrap = 1;
    attr.sig_data = cookie;
    return syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

int cow_perf_event_enable(int fd, int enable) {
    return ioctl(fd, enable ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0);
}
