#!/usr/bin/env bash
# Redis BGSAVE under a SET load with the record engine attached the way it is meant for
# servers: `cowtrace -q -p PID --engine record --no-syscall-stops --while-shared` records the
# BGSAVE fork and lets go by itself once the child is gone (goal: BGSAVE and SET throughput
# within 1.3x of untraced, pages within 25% of Redis's own CoW figure).
# Usage (root, package root): Benchmarks/redis_record.sh [extra cowtrace options]
exec "$(dirname "$0")/redis_bgsave.sh" record --no-syscall-stops --while-shared "$@"
