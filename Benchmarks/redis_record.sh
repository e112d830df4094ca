#!/usr/bin/env bash
# Redis BGSAVE under a SET load, untraced and under the record engine attached the way it is
# meant for servers: `cowtrace -q -p PID --engine record --no-syscall-stops --while-shared`
# records the BGSAVE fork and lets go by itself once the child is gone.
# redis-server (Debian package) on 127.0.0.1 with a private port and directory, DEBUG POPULATE
# (KEYS, default 500000), then BGSAVE while `redis-benchmark -t set` (REQUESTS, bounded) runs.
# Prints BGSAVE time and SET throughput traced against untraced (goal: within 1.3x), cowtrace's
# pages copied x 4 KiB against Redis's own "Fork CoW for RDB: current N MB" line (the child's
# Private_Dirty: copies by either side; goal within 25%), and the top functions per process.
# Usage (root, package root): Benchmarks/redis_record.sh [extra cowtrace options]
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${KEYS:-500000}
requests=${REQUESTS:-300000}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
server=""
tracer=""
cleanup() {
  [ -n "$tracer" ] && kill -INT "$tracer" 2>/dev/null && sleep 0.5
  [ -n "$tracer" ] && kill -KILL "$tracer" 2>/dev/null
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
swift build -c release --product cowtrace >/dev/null
cowtrace=$(swift build -c release --show-bin-path)/cowtrace
cli() { timeout 30 redis-cli -h 127.0.0.1 -p "$port" "$@"; }
now() { date +%s.%N; }

# Redis 7 refuses DEBUG unless enabled.
redis-server --bind 127.0.0.1 --port "$port" --dir "$work" --dbfilename dump.rdb --save "" --appendonly no \
  --enable-debug-command local --logfile "$work/redis.log" --protected-mode yes >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
cli DEBUG POPULATE "$keys" >/dev/null
echo "redis-server $server on 127.0.0.1:$port, $(cli DBSIZE) keys"

# One BGSAVE under load: prints "seconds requests_per_second cow_mb".
bgsave_round() {
  local before s e rps cow bench
  before=$(grep -c "Fork CoW for RDB" "$work/redis.log" || true)
  timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$requests" -c 20 -r 1000000 -q >"$work/bench.out" 2>&1 &
  bench=$!
  sleep 0.5
  s=$(now)
  cli BGSAVE >/dev/null
  for _ in $(seq 6000); do
    [ "$(cli INFO persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')" = 0 ] && break
    sleep 0.05
  done
  e=$(now)
  wait "$bench" || true
  rps=$(tr '\r' '\n' <"$work/bench.out" | awk '/^SET: [0-9.]+ requests per second/ {v=$2} END {print v+0}')
  for _ in $(seq 50); do
    [ "$(grep -c "Fork CoW for RDB" "$work/redis.log" || true)" -gt "$before" ] && break
    sleep 0.1
  done
  cow=$(grep "Fork CoW for RDB" "$work/redis.log" | tail -1 | sed -n 's/.*current \([0-9]*\) MB.*/\1/p')
  echo "$(python3 -c "print($e - $s)") ${rps:-0} ${cow:-0}"
}

read -r u_time u_rps u_cow < <(bgsave_round)
echo "untraced: BGSAVE $u_time s, SET $u_rps req/s, Redis CoW $u_cow MB"

"$cowtrace" -q -p "$server" --engine record --no-syscall-stops --while-shared "$@" --json "$work/events.json" -o "$work/cow.log" &
tracer=$!
for _ in $(seq 100); do
  grep -q "^TracerPid:[[:space:]]*$tracer" /proc/"$server"/status 2>/dev/null && break
  sleep 0.05
done
sleep 0.5
read -r t_time t_rps t_cow < <(bgsave_round)
# --while-shared: cowtrace ends by itself once the BGSAVE child is gone.
for _ in $(seq 600); do kill -0 "$tracer" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$tracer" 2>/dev/null; then echo "cowtrace did not let go by itself"; kill -INT "$tracer"; sleep 1; fi
tracer=""
echo "record engine: BGSAVE $t_time s, SET $t_rps req/s, Redis CoW $t_cow MB; server still traced: $(awk '/^TracerPid/ {print $2}' /proc/$server/status)"
python3 - "$u_time" "$t_time" "$u_rps" "$t_rps" "$t_cow" "$work/events.json" "$server" <<'PY'
import sys, json, collections
ut, tt, ur, tr, cow = map(float, sys.argv[1:6])
events = [json.loads(l) for l in open(sys.argv[6])]
server = int(sys.argv[7])
summary = [e for e in events if e["event"] == "summary"][-1]
splits = [e for e in events if e["event"] == "split"]
print(f"BGSAVE: {tt / ut:.2f}x untraced (goal <= 1.3x); SET throughput: {tr / ur if ur else 0:.2f}x untraced ({tr:.0f} vs {ur:.0f} req/s)")
mb = len(splits) * 4096 / 1048576
off = abs(mb - cow) / cow if cow > 0 else float("inf")
print(f"pages copied: {len(splits)} x 4 KiB = {mb:.1f} MB against Redis's {cow:.0f} MB: {off * 100:.0f}% off (goal <= 25%);"
      f" {summary.get('lost_samples')} samples lost")
for who, pick in (("parent", lambda s: s["writer"] == server), ("child", lambda s: s["writer"] != server)):
    functions = collections.Counter()
    for s in filter(pick, splits):
        functions[(s.get("symbol") or s["cause"]).split("+")[0]] += 1
    print(f"  top functions copying pages in the {who}: " + ", ".join(f"{n} {c}" for n, c in functions.most_common(5)))
PY
