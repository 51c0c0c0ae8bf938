#!/usr/bin/env bash
# Benchmark: what counting for GET /metrics costs an increment, in one run on one machine:
#   1. increments/s of `shardctl serve` (--role all, 3 shards, fresh on free ports every time)
#      with its metrics and with --no-metrics, side by side: wrk -t2 with CONNECTIONS
#      connections (32) and bench/increment.lua (POST /increment {"value":1}) against the
#      aggregator for SECONDS, in each configuration of CONFIGS:
#        in-memory      --in-memory
#        fsync-always   --data-dir (a fresh temporary one) --fsync always. The journal's write
#                       and fsync histograms (store/file_journal.cc) are observed on every
#                       batched write with --no-metrics too, as is the shard's count of
#                       applied increments (core/shard.cc): what this pair tells apart is the
#                       HTTP counting (net/http_server.cc) while the journal fsyncs.
#      The two of a pair run one after the other, in each round, in the order with/without in
#      odd rounds and without/with in even ones (so that neither always runs first). Beside the
#      rate, the server's CPU time over the load (utime + stime from /proc/PID/stat) is kept:
#      CPU seconds per increment, measured rather than bounded.
#      After each load with metrics, before the server stops, GET /metrics is scraped once and
#      checked with `promtool check metrics`, and its shardctl_increments_total (summed over
#      shards) must have counted the increments wrk saw answered, give or take those in flight
#      when wrk stopped (at most one per connection).
#   2. the per-request cost of counting, shardctl's hand-written core/metrics.h against
#      prometheus-cpp (bench_metrics_cost, bench/metrics_cost.cc, Google Benchmark: CPU ns per
#      request on 1 thread and on 2 threads counting into the same metrics, medians of
#      REPETITIONS), each related to one increment's CPU time without metrics, bounded above by
#      2 cores / increments/s (wrk runs on the same 2 cores, so the server has less than that)
#      and measured (the server's CPU seconds / increments): counting alone, and counting plus
#      the one steady_clock::now() that timing an answer adds (either library needs it).
#      Left out, with a note, when prometheus-cpp or Google Benchmark is not installed.
# It prints the medians, the ratio with/without per round and of the medians (goal: counting
# costs below 3% of increments/s, i.e. ratio >= 0.97), and the costs; the raw results (and the
# medians, round "median") go to bench/results/metrics.tsv and the per-request costs to
# bench/results/metrics_cost.tsv. A benchmark, not a test: CI does not run it.
# Usage: bench/metrics.sh [SECONDS_PER_LOAD] [ROUNDS]     (default 5 5: about 3 minutes)
# Environment: CONNECTIONS (32), CONFIGS ("in-memory fsync-always"), REPETITIONS (5),
# JOBS (build jobs, default ninja's), RESULTS_DIR (bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${1:-5}
rounds=${2:-5}
connections=${CONNECTIONS:-32}
repetitions=${REPETITIONS:-5}
read -r -a configs <<<"${CONFIGS:-in-memory fsync-always}"
results_dir=${RESULTS_DIR:-bench/results}
shards=3

for config in "${configs[@]}"; do
  [[ $config =~ ^(in-memory|fsync-always)$ ]] ||
    { echo "metrics.sh: CONFIGS: '$config' is neither in-memory nor fsync-always" >&2; exit 2; }
done

# --- what it needs -----------------------------------------------------------------------
bash .ci/setup  # promtool (prometheus) among the rest
need=()
for tool in wrk curl; do command -v $tool >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "Installing Debian packages for: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk curl >&2
fi
build_jobs=(); [ -z "${JOBS:-}" ] || build_jobs=(-j "$JOBS")
cmake --preset release >/dev/null
cmake --build --preset release --target shardctl "${build_jobs[@]}" >/dev/null
shardctl=$repo/build/release/shardctl
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDCTL_BUILD_TESTS=OFF \
  -DSHARDCTL_BUILD_BENCH=ON >/dev/null
metrics_cost=""
if cmake --build build/bench --target help | grep -q '^bench_metrics_cost:'; then
  cmake --build build/bench --target bench_metrics_cost "${build_jobs[@]}" >/dev/null
  metrics_cost=$repo/build/bench/bench/bench_metrics_cost
else
  echo "note: bench_metrics_cost is not built (prometheus-cpp-dev or libbenchmark-dev missing):" \
       "the per-request costs are left out" >&2
fi

# --- servers -----------------------------------------------------------------------------
work=$(mktemp -d)
pids=()  # every background process, for the trap
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "metrics.sh: interrupted" >&2; exit 130' INT
trap 'echo "metrics.sh: terminated" >&2; exit 143' TERM
# stop_pids PID...: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_pids() {
  local pid deadline=$((SECONDS + 10))
  for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
wait_line() {  # file pattern pid
  local tries=0
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { echo "server exited:" >&2; cat "$1" >&2; exit 1; }
    ((++tries > 600)) && { echo "server not ready after 30 s:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
}
# start_server CONFIG METRICS(with|without): shardctl serve on free ports (--port 0: the
# kernel picks them, so nothing can take them between a check and the bind); sets $server
# (its pid), $address (the aggregator's) and $data (its data directory, or "").
start_server() {
  local config=$1 metrics=$2 out options=()
  out=$work/serve-$RANDOM.out
  data=""
  case $config in
    in-memory) options=(--in-memory) ;;
    fsync-always) data=$work/data-$RANDOM; options=(--data-dir "$data" --fsync always) ;;
  esac
  [ "$metrics" = without ] && options+=(--no-metrics)
  "$shardctl" serve --port 0 --shard-base-port 0 --shards $shards "${options[@]}" >"$out" 2>&1 &
  server=$!; pids+=($!)
  wait_line "$out" "aggregator listening" $!
  address=$(awk '/aggregator listening/ {print $NF}' "$out")
}
stop_server() {
  stop_pids "$server"
  local rest=() p
  for p in "${pids[@]}"; do [ "$p" = "$server" ] || rest+=("$p"); done
  pids=("${rest[@]}")
  [ -z "$data" ] || rm -rf "$data"
}
clock_ticks=$(getconf CLK_TCK)
cpu_seconds() {  # pid -> utime + stime of every thread so far, in seconds
  awk -v hz="$clock_ticks" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"
}

# --- loads -------------------------------------------------------------------------------
tsv=$work/metrics.tsv
printf 'config\tmetrics\tround\tincrements_per_s\tincrements\tserver_cpu_s\n' >"$tsv"
scrapes_checked=0
# One load: a fresh server, wrk for $seconds, its rate and CPU time; with metrics, the scrape.
measure() {  # config metrics round
  local config=$1 metrics=$2 round=$3 before after out rate n cpu
  start_server "$config" "$metrics"
  before=$(cpu_seconds "$server")
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" -s bench/increment.lua "http://$address/increment")
  after=$(cpu_seconds "$server")
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
    echo "$config $metrics metrics: errors under load:" >&2; echo "$out" >&2; exit 1
  fi
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.2f", a - b}')
  [ "$metrics" = with ] && check_scrape "$config" "$round" "$n"
  stop_server
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$config" "$metrics" "$round" "$rate" "$n" "$cpu" >>"$tsv"
  printf 'round %s: %-13s %-7s metrics %10.0f increments/s, server CPU %5.2f s (%.1f us/increment)\n' \
    "$round" "$config" "$metrics" "$rate" "$cpu" "$(awk -v c="$cpu" -v n="$n" 'BEGIN {print c / n * 1e6}')" >&2
}
# GET /metrics once, right after the load: promtool must accept it, and the increments it
# counted must be those wrk saw answered, plus at most one in flight per connection.
check_scrape() {  # config round increments
  local scrape=$work/metrics-$1-$2.txt counted
  curl -sf --max-time 10 "http://$address/metrics" >"$scrape"
  if ! promtool check metrics <"$scrape" >"$work/promtool.out" 2>&1; then
    echo "$1 round $2: promtool check metrics refused GET /metrics:" >&2
    cat "$work/promtool.out" >&2; exit 1
  fi
  counted=$(awk '/^shardctl_increments_total[{ ]/ {n += $NF} END {printf "%.0f", n}' "$scrape")
  if ((counted < $3 || counted > $3 + connections)); then
    echo "$1 round $2: wrk saw $3 increments answered, shardctl_increments_total counted $counted" >&2
    exit 1
  fi
  scrapes_checked=$((scrapes_checked + 1))
  cp "$scrape" "$work/last-scrape.txt"
}

echo "metrics: ${seconds}s per load, $rounds rounds, $connections connections, configurations:" \
     "${configs[*]}" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)  # others' load on the machine, for the record
for round in $(seq "$rounds"); do
  order=(with without); ((round % 2)) || order=(without with)
  for config in "${configs[@]}"; do
    for metrics in "${order[@]}"; do measure "$config" "$metrics" "$round"; done
  done
done
load_after_loads=$(cut -d' ' -f1-3 /proc/loadavg)

# --- per-request costs -------------------------------------------------------------------
cost_csv=$work/metrics_cost.csv
if [ -n "$metrics_cost" ]; then
  echo "bench_metrics_cost: $repetitions repetitions" >&2
  "$metrics_cost" --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true \
    --benchmark_format=csv >"$cost_csv" 2>"$work/metrics_cost.err" ||
    { cat "$work/metrics_cost.err" >&2; exit 1; }
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- medians and ratios ------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
column_of() {  # config metrics column -> the values of that column, one a line
  awk -F'\t' -v c="$1" -v m="$2" -v k="$3" 'NR > 1 && $1 == c && $2 == m {print $k}' "$tsv"
}
med() {  # config metrics -> median increments/s ("" when not measured)
  local values; values=$(column_of "$1" "$2" 4)
  [ -z "$values" ] || median <<<"$values"
}
cpu_per_increment_us() {  # config metrics -> median over rounds of server CPU us / increment
  awk -F'\t' -v c="$1" -v m="$2" 'NR > 1 && $1 == c && $2 == m {print $6 / $5 * 1e6}' "$tsv" | median
}
fmt() {  # 12345.6 -> 12,346
  [ -n "$1" ] || { printf -- '-'; return; }
  awk -v x="$1" 'BEGIN {s = sprintf("%.0f", x); o = ""
    while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}
    printf "%s", s o}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
goal() { awk -v r="$1" 'BEGIN {print (r >= 0.97 ? "met" : "NOT MET")}'; }

date=$(date -u +%Y-%m-%d)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
# shellcheck source=/dev/null
machine="$(nproc) cores, ${cpu:-unknown CPU}, $(. /etc/os-release; echo "$PRETTY_NAME")"
header="bench/metrics.sh $seconds $rounds; CONNECTIONS=$connections; $machine; $date; load average before $load_before, after the loads $load_after_loads, after bench_metrics_cost $load_after"
mkdir -p "$results_dir"
{
  echo "# $header"
  cat "$tsv"
  for config in "${configs[@]}"; do
    for metrics in with without; do
      printf '%s\t%s\tmedian\t%s\t-\t-\n' "$config" "$metrics" "$(med "$config" "$metrics")"
    done
  done
} >"$results_dir/metrics.tsv"

echo
echo "Increments/s, $rounds rounds of ${seconds}s, $connections connections; $machine; $date;"
echo "load average before $load_before, after the loads $load_after_loads."
echo "shardctl serve --shards $shards, wrk -t2 -c$connections bench/increment.lua against the aggregator."
echo
echo "| configuration | round | with metrics | --no-metrics | with/without |"
echo "|---|---|---|---|---|"
for config in "${configs[@]}"; do
  for round in $(seq "$rounds"); do
    w=$(awk -F'\t' -v c="$config" -v r="$round" 'NR > 1 && $1 == c && $2 == "with" && $3 == r {print $4}' "$tsv")
    wo=$(awk -F'\t' -v c="$config" -v r="$round" 'NR > 1 && $1 == c && $2 == "without" && $3 == r {print $4}' "$tsv")
    echo "| $config | $round | $(fmt "$w") | $(fmt "$wo") | $(ratio "$w" "$wo") |"
  done
  w=$(med "$config" with); wo=$(med "$config" without)
  per_round=$(for round in $(seq "$rounds"); do
    awk -F'\t' -v c="$config" -v r="$round" 'NR > 1 && $1 == c && $3 == r {v[$2] = $4}
      END {print v["with"] / v["without"]}' "$tsv"; done | median)
  echo "| $config | **median** | **$(fmt "$w")** | **$(fmt "$wo")** | **$(ratio "$w" "$wo")** (median of the rounds' ratios $(printf %.3f "$per_round")) |"
done
echo
for config in "${configs[@]}"; do
  r=$(ratio "$(med "$config" with)" "$(med "$config" without)")
  echo "$config: with/without metrics $r (goal >= 0.97: $(goal "$r")); server CPU per increment" \
       "$(printf %.1f "$(cpu_per_increment_us "$config" with)") us with metrics," \
       "$(printf %.1f "$(cpu_per_increment_us "$config" without)") us without (medians)"
done
echo "GET /metrics after each load with metrics: $scrapes_checked scrapes, each accepted by" \
     "promtool check metrics ($(promtool --version 2>&1 | awk 'NR == 1 {print $3}')) and counting" \
     "the increments wrk saw"

if [ -n "$metrics_cost" ]; then
  # CSV: name,iterations,real_time,cpu_time,time_unit,...; with repetitions only the
  # aggregates, whose names end in _median. The time unit is ns (the default).
  cost() {  # benchmark column(3 real, 4 cpu) -> its median, ns (one repetition: its time)
    awk -F, -v b="\"$1\"" -v m="\"$1_median\"" -v k="$2" '$1 == b || $1 == m {print $k}' "$cost_csv"
  }
  clock_ns=$(cost BM_clock/threads:1 4)
  {
    echo "# $header; bench_metrics_cost --benchmark_repetitions=$repetitions: medians, ns per request;" \
         "increment_cpu_bound_ns = 2 cores / increments/s without metrics (median), increment_cpu_measured_ns" \
         "= the server's CPU time / increments without metrics (median); pct_*: counting_cpu_ns as a" \
         "percentage of those, pct_clock_*: counting_cpu_ns + clock_ns (one steady_clock::now())"
    printf 'config\tlibrary\tthreads\tcounting_cpu_ns\tcounting_real_ns\tclock_ns\tincrement_cpu_bound_ns\tincrement_cpu_measured_ns\tpct_of_bound\tpct_of_measured\tpct_clock_of_bound\tpct_clock_of_measured\n'
    for config in "${configs[@]}"; do
      bound=$(awk -v r="$(med "$config" without)" 'BEGIN {printf "%.0f", 2e9 / r}')
      measured=$(awk -v u="$(cpu_per_increment_us "$config" without)" 'BEGIN {printf "%.0f", u * 1000}')
      for library in shardctl prometheus_cpp; do
        for threads in 1 2; do
          c=$(cost "BM_$library/threads:$threads" 4); r=$(cost "BM_$library/threads:$threads" 3)
          awk -v OFS='\t' -v cf="$config" -v l="$library" -v t="$threads" -v c="$c" -v r="$r" \
            -v k="$clock_ns" -v b="$bound" -v m="$measured" \
            'BEGIN {printf "%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.3f\n", cf, l, t,
                    c, r, k, b, m, c / b * 100, c / m * 100, (c + k) / b * 100, (c + k) / m * 100}'
        done
      done
    done
  } >"$results_dir/metrics_cost.tsv"
  echo
  echo "Per-request cost of counting (bench_metrics_cost, medians of $repetitions; CPU ns per"
  echo "request, real ns in brackets; with 2 threads both count into the same metrics), and as a"
  echo "share of an increment's CPU time without metrics: counting alone, and counting plus the one"
  echo "steady_clock::now() that timing the answer adds ($(printf %.1f "$clock_ns") ns, in brackets):"
  echo
  echo "| configuration | increment CPU: bound (2 cores / rate) | measured (server) | library | threads | CPU ns/request (real ns) | % of bound (with the clock) | % of measured (with the clock) |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' 'NR > 2 {printf "| %s | %.1f us | %.1f us | %s | %s | %.1f (%.1f) | %.2f%% (%.2f%%) | %.2f%% (%.2f%%) |\n",
                       $1, $7 / 1000, $8 / 1000, $2, $3, $4, $5, $9, $11, $10, $12}' "$results_dir/metrics_cost.tsv"
  echo
  echo "raw results and medians: $results_dir/metrics.tsv; per-request costs: $results_dir/metrics_cost.tsv"
else
  echo
  echo "raw results and medians: $results_dir/metrics.tsv"
fi
