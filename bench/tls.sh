#!/usr/bin/env bash
# Benchmark: what TLS costs shardctl, side by side in one run on one machine (issue 16):
#   1. increments/s of `shardctl serve --in-memory` (--role all, 3 shards, fresh on free ports
#      every time) over plain HTTP and over TLS (--tls-cert/--tls-key, a throwaway EC P-256
#      certificate): wrk -t2 with CONNECTIONS (32) keep-alive connections and
#      bench/increment.lua (POST /increment {"value":1}) against the aggregator for SECONDS,
#      http:// and https://. Ratio TLS/plain: goal >= 0.7.
#   2. Redis 7 on the same certificate: redis-server --port 0 --tls-port P (--tls-auth-clients
#      no) and redis-benchmark --tls -t incr -c CONNECTIONS -P 1, and plain Redis for
#      reference (redis-benchmark sized to run about SECONDS).
#   3. one increment from a fresh process: `shardctl inc 1 --url https://... --cacert ca.pem`
#      against `curl --cacert ca.pem -d '{"value":1}' https://.../increment` (and the plain
#      http:// pair), hyperfine -N --warmup 5 --runs 50.
# Each round runs every load once, on freshly started servers, in the order of the list in odd
# rounds and reversed in even ones (so that none always runs first); the server's CPU time over
# each load is kept too (utime + stime from /proc/PID/stat). It prints the medians over the
# rounds and their ratios (also per round, and the server's CPU per increment plain/TLS, which
# others' load on the machine moves much less); the raw results and the medians (round
# "median") are appended to bench/results/tls.tsv. A benchmark, not a test: CI does not run it.
# Before measuring, it checks that the shardctl under test has what issue 16's plan names
# (serve --tls-cert/--tls-key, inc --cacert, https:// URLs) and that each works once; a part
# that is missing stops the run with what is missing, or, with SKIP_MISSING=1, is left out
# (the summary says so, and the script exits 3 once the rest is measured).
# Usage: bench/tls.sh [SECONDS_PER_LOAD] [ROUNDS]     (default 5 5: about 2 minutes, once built)
# Environment: CONNECTIONS (32), HYPERFINE_RUNS (50), SKIP_MISSING (0), JOBS (build jobs,
# default ninja's), RESULTS_DIR (bench/results), SHARDCTL (a shardctl binary to use instead of
# building build/release/shardctl).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
seconds=${1:-5}
rounds=${2:-5}
connections=${CONNECTIONS:-32}
hyperfine_runs=${HYPERFINE_RUNS:-50}
hyperfine_warmup=5
skip_missing=${SKIP_MISSING:-0}
results_dir=${RESULTS_DIR:-bench/results}
shards=3
[[ $seconds =~ ^[1-9][0-9]*$ && $rounds =~ ^[1-9][0-9]*$ ]] ||
  { echo "usage: bench/tls.sh [SECONDS_PER_LOAD] [ROUNDS] (whole numbers, at least 1)" >&2; exit 2; }

# --- what it needs -----------------------------------------------------------------------
bash .ci/setup  # openssl, curl among the rest
need=()
for tool in wrk redis-server redis-benchmark redis-cli hyperfine curl openssl; do
  command -v $tool >/dev/null || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "Installing Debian packages for: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    wrk redis-server redis-tools hyperfine curl openssl >&2
fi
if [ -n "${SHARDCTL:-}" ]; then
  shardctl=$(realpath -- "$SHARDCTL")
else
  build_jobs=(); [ -z "${JOBS:-}" ] || build_jobs=(-j "$JOBS")
  cmake --preset release >/dev/null
  cmake --build --preset release --target shardctl "${build_jobs[@]}" >/dev/null
  shardctl=$repo/build/release/shardctl
fi

# --- processes ---------------------------------------------------------------------------
work=$(mktemp -d)
pids=()  # every background process, for the trap
cleanup() {
  stop_pids "${pids[@]}"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "tls.sh: interrupted" >&2; exit 130' INT
trap 'echo "tls.sh: terminated" >&2; exit 143' TERM
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
stop_server() {
  stop_pids "$server"
  local rest=() p
  for p in "${pids[@]}"; do [ "$p" = "$server" ] || rest+=("$p"); done
  pids=("${rest[@]}")
}
wait_line() {  # file pattern pid
  local tries=0
  until grep -q "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || { echo "server exited:" >&2; cat "$1" >&2; exit 1; }
    ((++tries > 600)) && { echo "server not ready after 30 s:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: a port nobody listens on, below the ephemeral range (where outgoing connections
# could take it between the check and the bind). Redis needs a port number of us.
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
  local port span=$((ephemeral_low - 10000))
  [ $span -gt 1000 ] || span=20000
  for _ in $(seq 1000); do
    port=$((10000 + (RANDOM * 32768 + RANDOM) % span))
    port_in_use $port || { echo $port; return; }
  done
  echo "tls.sh: no free port found below $ephemeral_low" >&2; exit 1
}
clock_ticks=$(getconf CLK_TCK)
cpu_seconds() {  # pid -> utime + stime of every thread so far, in seconds
  awk -v hz="$clock_ticks" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"
}

# --- certificates: a CA and a server certificate for 127.0.0.1, EC P-256 -------------------
pki=$work/pki
mkdir -p "$pki"
cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
new_key=(-config "$pki/openssl.cnf" -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
if ! { openssl req "${new_key[@]}" -x509 -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 2 \
          -subj /CN=shardctl-bench-ca -extensions ca_ext &&
        openssl req "${new_key[@]}" -keyout "$pki/server.key" -out "$pki/server.pem" -days 2 \
          -subj /CN=shardctl-bench-server -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
          -set_serial 0x1001 -extensions server_ext; } 2>"$work/openssl.err"; then
  echo "tls.sh: cannot make the certificates:" >&2; cat "$work/openssl.err" >&2; exit 1
fi
ca=$pki/ca.pem

# start_shardctl http|https: shardctl serve --in-memory on free ports (--port 0: the kernel
# picks them); sets $server (its pid) and $address (the aggregator's host:port).
start_shardctl() {
  local scheme=$1 out tls=()
  out=$work/serve-$RANDOM.out
  [ "$scheme" = https ] && tls=(--tls-cert "$pki/server.pem" --tls-key "$pki/server.key")
  "$shardctl" serve --port 0 --shard-base-port 0 --shards $shards --in-memory "${tls[@]}" \
    >"$out" 2>&1 &
  server=$!; pids+=($!)
  wait_line "$out" "aggregator listening" $!
  address=$(awk '/aggregator listening/ {print $NF}' "$out")
}
# start_redis plain|tls: redis-server without persistence; sets $server and $port. A port
# taken between free_port and the bind: another port, up to 5 times.
redis_tls=(--tls --cacert "$ca")
start_redis() {
  local mode=$1 out=$work/redis-$RANDOM.out tries options cli=()
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    if [ "$mode" = tls ]; then
      options=(--port 0 --tls-port "$port" --tls-cert-file "$pki/server.pem"
               --tls-key-file "$pki/server.key" --tls-ca-cert-file "$ca" --tls-auth-clients no)
      cli=("${redis_tls[@]}")
    else
      options=(--port "$port")
    fi
    redis-server "${options[@]}" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
      --daemonize no >"$out" 2>&1 &
    server=$!; pids+=($!); tries=0
    until redis-cli -h 127.0.0.1 -p "$port" "${cli[@]}" ping >/dev/null 2>&1; do
      kill -0 "$server" 2>/dev/null || break
      ((++tries > 600)) && { echo "redis-server not ready after 30 s:" >&2; cat "$out" >&2; exit 1; }
      sleep 0.05
    done
    kill -0 "$server" 2>/dev/null && return
    stop_server
  done
  echo "tls.sh: redis-server ($mode) did not start:" >&2; cat "$out" >&2; exit 1
}

# --- what the shardctl under test can do ---------------------------------------------------
# Each part of the TLS measurement needs something of issue 16. Checked on the binary's help
# and then once for real, so that a missing or broken piece says what it is instead of
# failing inside wrk or hyperfine.
missing=()       # what is missing, in words
can_serve_tls=1  # serve --tls-cert/--tls-key answers https://
can_inc_tls=1    # shardctl inc --url https://... --cacert
serve_help=$("$shardctl" serve --help 2>&1 || true)
inc_help=$("$shardctl" inc --help 2>&1 || true)
for flag in --tls-cert --tls-key; do
  grep -q -- "$flag" <<<"$serve_help" ||
    { can_serve_tls=0; missing+=("shardctl serve has no $flag"); }
done
grep -q -- --cacert <<<"$inc_help" || { can_inc_tls=0; missing+=("shardctl inc has no --cacert"); }
if ((can_serve_tls)); then
  start_shardctl https
  if ! curl -sS -f --max-time 10 --cacert "$ca" -H 'Content-Type: application/json' \
       -d '{"value":1}' "https://$address/increment" >"$work/check.out" 2>&1; then
    can_serve_tls=0; can_inc_tls=0
    missing+=("shardctl serve --tls-cert does not answer curl over https: $(tr '\n' ' ' <"$work/check.out")")
  elif ((can_inc_tls)) &&
       ! timeout 30 "$shardctl" inc 1 --url "https://$address" --cacert "$ca" >"$work/check.out" 2>&1; then
    can_inc_tls=0
    missing+=("shardctl inc --url https://... --cacert fails: $(tr '\n' ' ' <"$work/check.out")")
  fi
  # What the clients negotiate with it, for the record.
  shardctl_tls=$(timeout 10 openssl s_client -connect "$address" -CAfile "$ca" </dev/null 2>/dev/null |
    awk '/^New, / {sub(/^New, /, ""); print; exit}')
  stop_server
else
  can_inc_tls=0
fi
start_redis tls
redis_tls_protocol=$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$ca" </dev/null 2>/dev/null |
  awk '/^New, / {sub(/^New, /, ""); print; exit}')
stop_server
if [ ${#missing[@]} -gt 0 ]; then
  echo "tls.sh: this shardctl ($shardctl) lacks what issue 16's TLS measurements need:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  if [ "$skip_missing" != 1 ]; then
    echo "tls.sh: nothing measured; SKIP_MISSING=1 measures the rest and leaves these out" >&2
    exit 3
  fi
  echo "tls.sh: SKIP_MISSING=1: measuring the rest; these are left out" >&2
fi

# --- loads -------------------------------------------------------------------------------
tsv=$work/tls.tsv
: >"$tsv"
record() {  # round config measure value unit
  printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$tsv"
}
# One wrk load against a fresh shardctl: its rate and the server's CPU per increment.
shardctl_load() {  # round http|https
  local round=$1 scheme=$2 before after out rate n cpu
  start_shardctl "$scheme"
  before=$(cpu_seconds "$server")
  out=$(timeout $((seconds + 30)) wrk -t2 -c"$connections" -d"${seconds}s" -s bench/increment.lua \
          "$scheme://$address/increment")
  after=$(cpu_seconds "$server")
  stop_server
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
    echo "shardctl over $scheme: errors under load:" >&2; echo "$out" >&2; exit 1
  fi
  rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN {printf "%.2f", (a - b) / n * 1e6}')
  record "$round" "shardctl-$scheme" increments_per_s "$rate" "req/s"
  record "$round" "shardctl-$scheme" server_cpu_per_increment "$cpu" us
  printf 'round %s: shardctl %-5s %10.0f increments/s, server CPU %5.1f us/increment\n' \
    "$round" "$scheme" "$rate" "$cpu" >&2
}
declare -A redis_n  # requests per redis-benchmark run, sized to take about $seconds
# One redis-benchmark INCR load against a fresh redis-server.
redis_load() {  # round plain|tls
  local round=$1 mode=$2 key=$2 n before after rate cpu tls=()
  start_redis "$mode"
  [ "$mode" = tls ] && tls=("${redis_tls[@]}")
  n=${redis_n[$key]:-$((seconds * 30000))}
  before=$(cpu_seconds "$server")
  # Sized from the last rate of the same mode; bounded all the same if the machine slows down.
  rate=$(timeout $((seconds * 10 + 30)) redis-benchmark -h 127.0.0.1 -p "$port" "${tls[@]}" \
           -t incr -c "$connections" -n "$n" -P 1 --csv 2>"$work/redis-benchmark.err" |
         awk -F'"' '$2 == "INCR" {print $4}')
  after=$(cpu_seconds "$server")
  stop_server
  [ -n "$rate" ] || { echo "redis-benchmark ($mode) failed:" >&2; cat "$work/redis-benchmark.err" >&2; exit 1; }
  redis_n[$key]=$(awk -v r="$rate" -v s="$seconds" 'BEGIN {n = int(r * s); print n < 5000 ? 5000 : n}')
  cpu=$(awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN {printf "%.2f", (a - b) / n * 1e6}')
  record "$round" "redis-$mode" increments_per_s "$rate" "req/s"
  record "$round" "redis-$mode" server_cpu_per_increment "$cpu" us
  printf 'round %s: redis %-5s    %10.0f increments/s, server CPU %5.1f us/increment (%s INCR)\n' \
    "$round" "$mode" "$rate" "$cpu" "$n" >&2
}
# One increment from a fresh process, against one shardctl serve over each scheme.
oneshot() {  # round
  local round=$1 scheme commands=() csv=$work/hyperfine-$1.csv name median
  local body='{"value":1}'
  for scheme in http https; do
    [ "$scheme" = https ] && ! ((can_serve_tls)) && continue
    start_shardctl "$scheme"
    local tls_inc=() tls_curl=""
    [ "$scheme" = https ] && tls_inc=(--cacert "$ca") && tls_curl="--cacert $ca "
    if [ "$scheme" = http ] || ((can_inc_tls)); then
      commands+=(-n "shardctl-inc-$scheme" "$shardctl inc 1 --url $scheme://$address ${tls_inc[*]}")
    fi
    commands+=(-n "curl-$scheme" "curl -sS -f ${tls_curl}-H 'Content-Type: application/json' -d '$body' $scheme://$address/increment")
    local "server_$scheme=$server"
  done
  timeout 600 hyperfine -N --style none --runs "$hyperfine_runs" --warmup $hyperfine_warmup \
    --export-csv "$csv" "${commands[@]}" >"$work/hyperfine.out" 2>&1 ||
    { echo "hyperfine failed:" >&2; cat "$work/hyperfine.out" >&2; exit 1; }
  for scheme in http https; do
    local var="server_$scheme"
    [ -n "${!var:-}" ] && { server=${!var}; stop_server; }
  done
  # command,mean,stddev,median,user,system,min,max (seconds)
  while IFS=, read -r name median; do
    record "$round" "$name" oneshot_ms "$(awk -v m="$median" 'BEGIN {printf "%.3f", m * 1000}')" ms
    printf 'round %s: %-18s %8.2f ms (median of %s runs)\n' "$round" "$name" \
      "$(awk -v m="$median" 'BEGIN {print m * 1000}')" "$hyperfine_runs" >&2
  done < <(awk -F, 'NR > 1 {print $1 "," $4}' "$csv")
}

loads=(shardctl-http shardctl-https redis-plain redis-tls oneshot)
((can_serve_tls)) || loads=(shardctl-http redis-plain redis-tls oneshot)
echo "tls: ${seconds}s per load, $rounds rounds, $connections connections;" \
     "hyperfine $hyperfine_runs runs after $hyperfine_warmup warm-up" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)  # others' load on the machine, for the record
started=$SECONDS
for round in $(seq "$rounds"); do
  order=("${loads[@]}")
  ((round % 2)) || for ((i = 0; i < ${#loads[@]}; i++)); do order[i]=${loads[-1 - i]}; done
  for load in "${order[@]}"; do
    case $load in
      shardctl-*) shardctl_load "$round" "${load#shardctl-}" ;;
      redis-*) redis_load "$round" "${load#redis-}" ;;
      oneshot) oneshot "$round" ;;
    esac
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- medians and ratios ------------------------------------------------------------------
median() { sort -g | awk '{v[NR]=$1} END {if (NR) print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
med() {  # config measure -> median over the rounds ("" when not measured)
  awk -F'\t' -v c="$1" -v m="$2" '$2 == c && $3 == m {print $4}' "$tsv" | median
}
fmt() {  # 12345.6 -> 12,346
  [ -n "$1" ] || { printf -- '-'; return; }
  awk -v x="$1" 'BEGIN {s = sprintf("%.0f", x); o = ""
    while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)}
    printf "%s", s o}'
}
per_s() { [ -n "$1" ] && printf '%s/s' "$(fmt "$1")" || printf -- '-'; }
ms() { [ -n "$1" ] && printf '%.2f ms' "$1" || printf -- '-'; }
us() { [ -n "$1" ] && printf '%.1f us' "$1" || printf -- '-'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}' || echo -; }
round_ratios() {  # config-a config-b measure -> "r1 r2 ..." of a/b per round, 2 decimals
  awk -F'\t' -v a="$1" -v b="$2" -v m="$3" -v rounds="$rounds" '$3 == m {v[$1 "|" $2] = $4}
    END {for (k = 1; k <= rounds; k++) if ((k "|" a) in v && (k "|" b) in v)
           printf "%s%.2f", (n++ ? " " : ""), v[k "|" a] / v[k "|" b]}' "$tsv"
}
per_round() {  # config-a config-b measure -> "per round: r1 r2 ...; their median m", or ""
  local ratios; ratios=$(round_ratios "$@")
  [ -n "$ratios" ] || return 0
  printf ' (per round: %s; their median %.2f)' "$ratios" "$(tr ' ' '\n' <<<"$ratios" | median)"
}
verdict() {  # ratio op bound
  [ "$1" = - ] && { echo "not measured"; return; }
  awk -v r="$1" -v b="$3" -v op="$2" 'BEGIN {print ((op == ">=" ? r >= b : r <= b) ? "met" : "NOT MET")}'
}

sh=$(med shardctl-http increments_per_s); ss=$(med shardctl-https increments_per_s)
rp=$(med redis-plain increments_per_s); rt=$(med redis-tls increments_per_s)
ih=$(med shardctl-inc-http oneshot_ms); is=$(med shardctl-inc-https oneshot_ms)
ch=$(med curl-http oneshot_ms); cs=$(med curl-https oneshot_ms)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
# shellcheck source=/dev/null
machine="$(nproc) cores, ${cpu:-unknown CPU}, $(. /etc/os-release; echo "$PRETTY_NAME")"
versions="$(openssl version | cut -d' ' -f1-2), $(redis-server --version | awk '{print $3}' | tr -d v=), $(wrk --version 2>&1 | awk 'NR == 1 {print $1, $2}'), $(hyperfine --version)"
tls_ratio=$(ratio "$ss" "$sh")

mkdir -p "$results_dir"
out_tsv=$results_dir/tls.tsv
[ -s "$out_tsv" ] || printf 'run\tround\tconfig\tmeasure\tvalue\tunit\n' >"$out_tsv"
{
  echo "# bench/tls.sh $seconds $rounds; CONNECTIONS=$connections; HYPERFINE_RUNS=$hyperfine_runs;" \
       "$machine; $versions; shardctl TLS: ${shardctl_tls:-not measured}; Redis TLS:" \
       "${redis_tls_protocol:-?}; load average before $load_before, after $load_after;" \
       "missing: ${missing[*]:-nothing}"
  awk -v run="$date" '{print run "\t" $0}' "$tsv"
  for config_measure in shardctl-http:increments_per_s shardctl-https:increments_per_s \
      redis-plain:increments_per_s redis-tls:increments_per_s \
      shardctl-http:server_cpu_per_increment shardctl-https:server_cpu_per_increment \
      redis-plain:server_cpu_per_increment redis-tls:server_cpu_per_increment \
      shardctl-inc-http:oneshot_ms curl-http:oneshot_ms shardctl-inc-https:oneshot_ms \
      curl-https:oneshot_ms; do
    config=${config_measure%%:*}; measure=${config_measure#*:}
    value=$(med "$config" "$measure")
    [ -n "$value" ] && printf '%s\tmedian\t%s\t%s\t%s\t%s\n' "$date" "$config" "$measure" "$value" \
      "$(awk -F'\t' -v c="$config" -v m="$measure" '$2 == c && $3 == m {print $5; exit}' "$tsv")"
  done
} >>"$out_tsv"

echo >&2
echo "TLS: medians of $rounds interleaved rounds, ${seconds}s per load, $connections connections," \
     "each load on freshly started servers; $machine; $date; $versions."
echo "Negotiated: shardctl ${shardctl_tls:-(not measured)}; Redis ${redis_tls_protocol:-?}. Load" \
     "average (1, 5, 15 min) before $load_before, after $load_after; $((SECONDS - started)) s of loads."
echo
echo "| load | plain | TLS | TLS / plain | server CPU per increment, plain / TLS |"
echo "|---|---|---|---|---|"
echo "| shardctl serve --in-memory, wrk -t2 -c$connections POST /increment (keep-alive) |" \
     "$(per_s "$sh") | $(per_s "$ss") | $(ratio "$ss" "$sh") |" \
     "$(us "$(med shardctl-http server_cpu_per_increment)") / $(us "$(med shardctl-https server_cpu_per_increment)") |"
echo "| redis-server, redis-benchmark -t incr -c $connections -P 1 |" \
     "$(per_s "$rp") | $(per_s "$rt") | $(ratio "$rt" "$rp") |" \
     "$(us "$(med redis-plain server_cpu_per_increment)") / $(us "$(med redis-tls server_cpu_per_increment)") |"
echo "| \`shardctl inc 1\`, one process (hyperfine -N, median) | $(ms "$ih") | $(ms "$is") | $(ratio "$is" "$ih") | |"
echo "| \`curl -d '{\"value\":1}' .../increment\`, one process | $(ms "$ch") | $(ms "$cs") | $(ratio "$cs" "$ch") | |"
echo
echo "| target | measured | goal | |"
echo "|---|---|---|---|"
echo "| shardctl increments/s, TLS / plain HTTP | $tls_ratio$(per_round shardctl-https shardctl-http increments_per_s) | >= 0.7 | $(verdict "$tls_ratio" ">=" 0.7) |"
# The server's CPU per increment moves much less than increments/s when others load the machine.
cpu_ratio=$(ratio "$(med shardctl-http server_cpu_per_increment)" "$(med shardctl-https server_cpu_per_increment)")
echo "| shardctl server CPU per increment, plain / TLS (what TLS/plain would be if the server alone were CPU-bound) | $cpu_ratio | (for the record) | |"
echo "| shardctl over TLS / Redis over TLS (increments/s) | $(ratio "$ss" "$rt")$(per_round shardctl-https redis-tls increments_per_s) | (for the record) | |"
echo "| shardctl over TLS / Redis plain (increments/s) | $(ratio "$ss" "$rp") | (for the record) | |"
echo "| \`shardctl inc\` over TLS / curl over TLS (time of one) | $(ratio "$is" "$cs")$(per_round shardctl-inc-https curl-https oneshot_ms) | (for the record) | |"
echo "| \`shardctl inc\` plain / curl plain (time of one) | $(ratio "$ih" "$ch") | (for the record) | |"
if [ ${#missing[@]} -gt 0 ]; then
  echo
  echo "Not measured (SKIP_MISSING=1):"
  printf -- '- %s\n' "${missing[@]}"
fi
echo >&2
echo "raw results and medians appended to $out_tsv" >&2
[ ${#missing[@]} -eq 0 ] || exit 3
