#!/usr/bin/env bash
# Benchmark: increments per second of `shardctl serve` in memory and with each
# --fsync policy, against redis-server INCR with appendfsync always and
# everysec, side by side in one run, at the same concurrency (16 connections).
# Each load runs ROUNDS times, interleaved; the medians are reported with the
# ratios the persistence issue sets as targets. A benchmark, not a test.
# Usage: bench/persistence.sh [SECONDS_PER_LOAD] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-3}
connections=16

bash .ci/setup
need=()
for tool in wrk redis-server redis-benchmark; do command -v $tool >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk redis-server redis-tools >&2
fi
cmake --workflow --preset release >/dev/null

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Starts shardctl serve with the given options; sets $address.
start_shardctl() {
  local out="$work/serve.out"
  build/release/shardctl serve --port 0 --shard-base-port 0 --data-dir "$work/data-$RANDOM" "$@" \
    >"$out" 2>&1 &
  pids+=($!)
  until grep -q aggregator "$out"; do kill -0 "${pids[-1]}"; sleep 0.05; done
  address=$(awk '/aggregator/ {print $NF}' "$out")
}
stop_last() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

shardctl_rate() {  # options... -> requests per second
  start_shardctl "$@"
  wrk -t2 -c$connections -d"${seconds}s" -s bench/increment.lua "http://$address/increment" |
    awk '/Requests\/sec/ {print $2}'
  stop_last
}

redis_rate() {  # appendfsync -> INCR per second
  local port=$((20000 + RANDOM % 20000))
  redis-server --port $port --dir "$work" --appendonly yes --appendfsync "$1" --save "" \
    --appendfilename "bench-$1-$RANDOM.aof" --daemonize no >/dev/null &
  pids+=($!)
  until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.05; done
  redis-benchmark -p $port -c $connections -n $((seconds * 40000)) -t incr --csv |
    awk -F'"' '/INCR/ {print $4}'
  redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true
  wait "${pids[-1]}" 2>/dev/null || true
  unset 'pids[-1]'
}

declare -A results
loads=("shardctl --in-memory" "shardctl --fsync no" "shardctl --fsync everysec"
       "shardctl --fsync always" "redis appendfsync everysec" "redis appendfsync always")
for round in $(seq "$rounds"); do
  for load in "${loads[@]}"; do
    case $load in
      "shardctl --in-memory") rate=$(shardctl_rate --in-memory) ;;
      shardctl*) rate=$(shardctl_rate --fsync "${load##* }") ;;
      redis*) rate=$(redis_rate "${load##* }") ;;
    esac
    results[$load]+="$rate "
    echo "round $round: $load: $rate/s" >&2
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "Increments per second, $connections connections, median of $rounds runs of ${seconds}s"
echo "($(nproc) cores, $(date -u +%Y-%m-%d)):"
for load in "${loads[@]}"; do
  printf '  %-30s %10.0f\n' "$load" "$(echo "${results[$load]}" | median)"
done
m() { echo "${results[$1]}" | median; }
echo
awk -v e="$(m 'shardctl --fsync everysec')" -v i="$(m 'shardctl --in-memory')" \
    -v a="$(m 'shardctl --fsync always')" -v ra="$(m 'redis appendfsync always')" \
    'BEGIN { printf "everysec / in-memory: %.2fx (target >= 0.8x)\n", e / i;
             printf "always / redis always: %.2fx (target >= 1x)\n", a / ra }'
