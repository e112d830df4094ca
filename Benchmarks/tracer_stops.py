"""The tracing thread's syscalls from `perf record -e raw_syscalls:sys_enter,raw_syscalls:sys_exit`:
per traced child, how many of each syscall it made, and per kind of stop (named by the first
ptrace request after the wait4 that reaped it) how long the tracer was busy before it waited
again. Used by Benchmarks/tracer_stops.sh."""
import collections
import re
import subprocess
import sys

# The first ptrace request after a stop says what kind of stop it was.
KINDS = {0x4202: "fault or signal", 0x420E: "syscall", 0x4201: "event", 12: "fork (regs)"}
NAMES = {0: "read", 1: "write", 3: "close", 7: "poll", 16: "ioctl", 17: "pread64", 61: "wait4", 89: "readlink",
         101: "ptrace", 257: "openat", 298: "perf_event_open"}


def main(data, children):
    text = subprocess.run(["perf", "script", "-i", data, "-F", "time,event,trace"], capture_output=True, text=True).stdout
    events = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+):\s+raw_syscalls:sys_(enter|exit): NR (-?\d+) (.*)", line)
        if m:
            events.append((float(m.group(1)), m.group(2), int(m.group(3)), m.group(4)))
    calls = collections.Counter(nr for _, kind, nr, _ in events if kind == "enter")
    print(f"tracing thread's syscalls per child ({children} children):")
    for nr, n in calls.most_common(10):
        print(f"  {NAMES.get(nr, nr)!s:16} {n / children:7.1f}")
    busy, count = collections.defaultdict(float), collections.Counter()
    kind, reaped = None, None
    for t, what, nr, rest in events:
        if what == "exit" and nr == 61 and not rest.strip().startswith("= -"):
            kind, reaped = None, t
        elif what == "enter" and nr == 101 and reaped is not None and kind is None:
            kind = KINDS.get(int(rest.split(",")[0].strip("( "), 16), "other")
        elif what == "enter" and nr == 61 and reaped is not None:
            busy[kind or "other"] += t - reaped
            count[kind or "other"] += 1
            reaped = None
    print("stops per child, and the tracer's time from each stop to its next wait:")
    for k, n in count.most_common():
        print(f"  {k:16} {n / children:7.1f} per child, {busy[k] / n * 1e6:7.1f} us each")
    print(f"  all stops: {sum(busy.values()) / children * 1e6:.0f} us of the tracer's time per child")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
