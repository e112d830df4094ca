#!/usr/bin/env python3
"""Runs a command and prints its own peak RSS (VmHWM, KiB) and exit status.

GNU time's %M is not this: a tracer reaps its tracees, so their peak RSS is folded into
its children's rusage. VmHWM is read from /proc/PID/status while the command runs (every
20 ms; the last reading before it exits is the peak)."""
import subprocess, sys, time

p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
peak = 0
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    except OSError:
        pass
    time.sleep(0.02)
print(peak, p.returncode)
