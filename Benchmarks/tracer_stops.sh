#!/usr/bin/env bash
# Where the tracer's time per child goes: runs Fixtures/many_children.c (N children, default
# 1000) under cowtrace -q while perf records the tracing thread's syscalls (raw_syscalls
# tracepoints: no ptrace of the tracer), then prints its syscalls per child and, per kind of
# stop, the time from the stop to its next wait (Benchmarks/tracer_stops.py). perf's own
# tracepoints add about a microsecond a syscall.
# Run as root from the package root: Benchmarks/tracer_stops.sh [N]
set -euo pipefail
source "$(dirname "$0")/common.sh"
need linux-perf perf
children=${1:-1000}
gcc -O0 -g -no-pie -o "$work/many_children" Fixtures/many_children.c
# The program waits a moment before its forks, so perf is recording the tracer by then.
"$cowtrace" -q -o "$work/c.log" sh -c "sleep 1; exec $work/many_children $children" &
guardian=$!
sleep 0.5
tracer=$(pgrep -P "$guardian" cowtrace || echo "$guardian")
perf record -q -e raw_syscalls:sys_enter,raw_syscalls:sys_exit -p "$tracer" -o "$work/tracer.data" 2>/dev/null &
recorder=$!
wait "$guardian"
sleep 0.3
kill -INT "$recorder" 2>/dev/null || true
wait "$recorder" 2>/dev/null || true
python3 Benchmarks/tracer_stops.py "$work/tracer.data" "$children"
