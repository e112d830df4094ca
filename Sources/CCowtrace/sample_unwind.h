// Unwinding a perf sample after the fact: registers and a copy of the top of the user stack,
// with the process's mapped ELF files for .eh_frame (private to the shim).
#ifndef COW_SAMPLE_UNWIND_H
#define COW_SAMPLE_UNWIND_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

typedef struct cow_sample_unwinder cow_sample_unwinder;

cow_sample_unwinder *cow_sample_unwinder_create(void);
void cow_sample_unwinder_destroy(cow_sample_unwinder *u);
// The process's mappings changed: re-read /proc/PID/maps before its next unwind.
void cow_sample_unwinder_stale(cow_sample_unwinder *u, pid_t pid);
// Fills up to `max` return addresses (frames[0] is regs->rip); returns how many.
int cow_sample_unwind(cow_sample_unwinder *u, pid_t pid, const struct user_regs_struct *regs, const unsigned char *stack,
                      uint64_t stack_size, uint64_t *frames, int max);

#endif
