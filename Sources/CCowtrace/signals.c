// Compile-time checks that the constants the header restates match the system headers.
#include "CCowtrace.h"
#include <signal.h>

_Static_assert(cow_TRAP_BRKPT == TRAP_BRKPT, "TRAP_BRKPT");
_Static_assert(cow_TRAP_TRACE == TRAP_TRACE, "TRAP_TRACE");
// <asm-generic/siginfo.h> cannot be included next to glibc's <signal.h> (both define
// siginfo_t); its TRAP_PERF is 6 since Linux 5.13, after TRAP_UNK (5), which glibc has.
_Static_assert(cow_TRAP_PERF == TRAP_UNK + 1, "TRAP_PERF");
