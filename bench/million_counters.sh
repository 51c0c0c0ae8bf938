#!/usr/bin/env bash
# Benchmark: a million distinct counters in one `shardctl serve` (3 shards,
# persisted with the default --fsync everysec). Reports resident memory per counter and the time of
# GET /counters?top=10 (hyperfine, median). A benchmark, not a test.
# Usage: bench/million_counters.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}

bash .ci/setup
command -v hyperfine >/dev/null || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq hyperfine >&2; }
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDCTL_BUILD_TESTS=OFF \
  -DSHARDCTL_BUILD_BENCH=ON >/dev/null
cmake --build build/bench >/dev/null

work=$(mktemp -d)
out="$work/serve.out"
build/bench/shardctl serve --port 0 --shard-base-port 0 --data-dir "$work/data" >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
until grep -q aggregator "$out"; do kill -0 $pid; sleep 0.1; done
address=$(awk '/aggregator/ {print $NF}' "$out")
rss_kib() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }

idle=$(rss_kib)
build/bench/bench/bench_load_counters "${address%:*}" "${address##*:}" "$count" 8
loaded=$(rss_kib)
echo "resident memory: idle $((idle / 1024)) MiB, with $count counters $((loaded / 1024)) MiB," \
     "$(( (loaded - idle) * 1024 / count )) bytes per counter"
hyperfine --warmup 2 --runs 10 --export-json /tmp/top10.json \
  "curl -sf http://$address/counters?top=10 -o /dev/null"
python3 -c "import json; r=json.load(open('/tmp/top10.json'))['results'][0]; \
print(f\"GET /counters?top=10 over {$count} counters: median {r['median']*1000:.0f} ms\")"
curl -s "http://$address/counters?top=3"; echo
du -sh "$work/data" | awk '{print "data directory: " $1}'
# Restart time with that history: stop, start again, time until ready.
kill $pid; wait $pid 2>/dev/null || true
start=$(date +%s.%N)
build/bench/shardctl serve --port 0 --shard-base-port 0 --data-dir "$work/data" >"$out" 2>&1 &
pid=$!
until grep -q aggregator "$out"; do kill -0 $pid; sleep 0.01; done
echo "restart with $count counters: ready after $(echo "$(date +%s.%N) - $start" | bc) s"
