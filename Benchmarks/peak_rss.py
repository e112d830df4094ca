#!/usr/bin/env python3
"""Runs a command and prints its peak RSS (VmHWM, KiB) and exit status.

The figure is the largest VmHWM among the command's process and its descendants running
the same program (cowtrace may run its tracer in a process of its own); the traced
programs are not counted. GNU time's %M is not this: a tracer reaps its tracees, so their
peak RSS is folded into its children's rusage. Read every 20 ms while the command runs."""
import os, subprocess, sys, time

p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
name = os.path.basename(sys.argv[1])[:15]
peak = 0

def field(pid, path, key):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key):
                    return line.split()[1]
    except OSError:
        return None

while p.poll() is None:
    ours = {p.pid}
    # Descendants of the command with its name (the tracer), found through PPid.
    for entry in os.listdir("/proc"):
        if entry.isdigit() and field(entry, "status", "Name:") == name:
            chain, pid = [], int(entry)
            while pid > 1 and pid not in ours and len(chain) < 8:
                chain.append(pid)
                pid = int(field(pid, "status", "PPid:") or 0)
            if pid in ours:
                ours.update(chain)
    for pid in ours:
        hwm = field(pid, "status", "VmHWM:")
        if hwm:
            peak = max(peak, int(hwm))
    time.sleep(0.02)
print(peak, p.returncode)
