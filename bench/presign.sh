#!/usr/bin/env bash
# Presign throughput: reelup-server and a real Uppy Companion (tests/companion) side by side,
# signing for the same embedded store, measured with wrk on loopback.
#
#   bench/presign.sh                       10 s per case, 16 connections, 1 wrk thread
#   DURATION=5 CONNECTIONS=32 THREADS=2 bench/presign.sh
#   REELUP_SERVER=path/to/reelup-server bench/presign.sh   (skips the release build)
#   WAIT_QUIET=0 bench/presign.sh          do not wait for other processes to go idle
#
# Servers, all on 127.0.0.1 and all signing for the embedded store of the first:
#   reelup-server --local                    the local stack as `./dev run` starts it (its
#                                            built-in per-token rate limit applies)
#   reelup-server serve, rate limit raised   the production mode, from a generated config
#                                            whose per-token limit is out of reach
#   Companion 6.x                            tests/companion/start.mjs (standalone app)
# Routes, on one multipart upload created per server:
#   GET /s3/multipart/{id}/{n}?key=   one signed part URL per request (n cycles 1..10000)
#   GET /s3/params?filename=&type=    one POST policy per request
# The Markdown table gives successful requests/s, p50 and p99 latency, failures, the
# server's CPU time per request, and where the machine's CPU went during each case: the
# server, wrk, interrupts (loopback TCP), and other processes (another build on the machine
# skews every figure; that column shows it).
# wrk runs on the same machine (load generator included) and is closed-loop, so latency at
# saturation is about CONNECTIONS / throughput. This prints figures; it asserts nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelup-target}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'presign.sh: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is needed to read JSON"
command -v curl >/dev/null || die "curl is needed"
command -v node >/dev/null || die "Node.js 20+ is needed for Companion"

if ! command -v wrk >/dev/null; then
  say "Installing wrk"
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq wrk >/dev/null
fi

if [ ! -f tests/companion/node_modules/.package-lock.json ] ||
  [ tests/companion/package-lock.json -nt tests/companion/node_modules/.package-lock.json ]; then
  say "Installing Uppy Companion (tests/companion)"
  (cd tests/companion && npm install --no-audit --no-fund --loglevel=error)
fi

if [ -n "${REELUP_SERVER:-}" ]; then
  SERVER="$REELUP_SERVER"
  [ -x "$SERVER" ] || die "REELUP_SERVER=$SERVER is not an executable"
else
  say "Building reelup-server (release, target dir $CARGO_TARGET_DIR)"
  cargo build --release --quiet -p reelup-server
  SERVER="$CARGO_TARGET_DIR/release/reelup-server"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
urlencode() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
random_hex() { python3 -c 'import secrets,sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"; }

# Prints the first line of a ready file that process $2 writes, once it is there.
ready_line() {
  local file="$1" pid="$2" name="$3"
  for _ in $(seq 300); do
    [ -s "$file" ] && { head -n 1 "$file"; return; }
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$WORK"/*.log >&2; die "$name did not start"; }
    sleep 0.1
  done
  die "$name did not say it was ready within 30 s"
}

KEY_ID="BENCH$(random_hex 6 | tr a-f A-F)"
KEY_SECRET="$(random_hex 24)"

say "Starting reelup-server --local"
REELUP_LOG="warn,s3s=off" REELUP_LOCAL_S3_ACCESS_KEY="$KEY_ID" REELUP_LOCAL_S3_SECRET_KEY="$KEY_SECRET" \
  "$SERVER" --local --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/local.ready" 2>"$WORK/local.log" &
LOCAL_PID=$!
PIDS+=("$LOCAL_PID")
line="$(ready_line "$WORK/local.ready" "$LOCAL_PID" "reelup-server --local")"
LOCAL="$(json "$line" endpoint)"
LOCAL_TOKEN="$(json "$line" token)"
CDN="$(json "$line" cdn)"
S3="$(json "$line" s3)"
BUCKET="$(json "$line" bucket)"

say "Starting reelup-server serve on the same store"
SERVE_TOKEN="rlp_$(random_hex 32)"
cat >"$WORK/serve.toml" <<EOF
listen = "127.0.0.1:0"
bucket = "$BUCKET"
region = "us-east-1"
endpoint = "$S3"
path_style = true
cdn_base_url = "$CDN"
log_format = "text"

[rate_limit]
requests_per_minute = 4000000000
burst = 1000000

[[users]]
name = "bench"
token_sha256 = "$(printf '%s' "$SERVE_TOKEN" | sha256sum | cut -d' ' -f1)"
EOF
: >"$WORK/aws-config"
# Keys from the environment only: no profile files, no instance metadata lookups.
REELUP_LOG=warn AWS_ACCESS_KEY_ID="$KEY_ID" AWS_SECRET_ACCESS_KEY="$KEY_SECRET" \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$WORK/aws-config" \
  AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-config" \
  "$SERVER" serve --config "$WORK/serve.toml" >"$WORK/serve.ready" 2>"$WORK/serve.log" &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
line="$(ready_line "$WORK/serve.ready" "$SERVE_PID" "reelup-server serve")"
SERVE="$(json "$line" endpoint)"

say "Starting Uppy Companion on the same store"
mkdir -p "$WORK/companion-data"
COMPANION_AWS_ENDPOINT="$S3" COMPANION_AWS_BUCKET="$BUCKET" COMPANION_AWS_KEY="$KEY_ID" \
  COMPANION_AWS_SECRET="$KEY_SECRET" COMPANION_DATADIR="$WORK/companion-data" \
  node tests/companion/start.mjs 0 >"$WORK/companion.ready" 2>"$WORK/companion.log" &
COMPANION_PID=$!
PIDS+=("$COMPANION_PID")
line="$(ready_line "$WORK/companion.ready" "$COMPANION_PID" Companion)"
COMPANION="$(json "$line" endpoint)"
COMPANION_NAME="Companion $(json "$line" version)"

# Creates one multipart upload; prints "<part path prefix> <part query>" for presign.lua.
create_upload() {
  local base="$1" auth=()
  [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
  local resp key id
  resp="$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"filename":"bench.mp4","type":"video/mp4","metadata":{}}' "$base/s3/multipart")" ||
    die "POST $base/s3/multipart failed"
  key="$(json "$resp" key)"
  id="$(json "$resp" uploadId)"
  # One signed URL must come back before anything is measured.
  curl -sf "${auth[@]}" "$base/s3/multipart/$(urlencode "$id")/1?key=$(urlencode "$key")" |
    grep -q '"url"' || die "$base did not sign a part URL"
  echo "/s3/multipart/$(urlencode "$id")/ ?key=$(urlencode "$key")"
}

# Machine-wide CPU ticks: "<busy> <total> <irq+softirq>" (softirq is loopback TCP's work,
# charged to no process).
cpu_ticks() { awk '/^cpu /{ t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t, $7 + $8 }' /proc/stat; }
# utime + stime of a process; the fields after the ")" that ends its name.
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# Other processes' CPU use skews every figure on a 2-core machine: wait (up to WAIT_QUIET
# seconds) until the machine is nearly idle, and say so when it never gets there.
busy_cores() {
  local a b
  a="$(cpu_ticks)"
  sleep 1
  b="$(cpu_ticks)"
  python3 -c 'import sys; b0, t0, _, b1, t1, _ = map(float, sys.argv[1:7]); print(f"{(b1 - b0) / (t1 - t0) * int(sys.argv[7]):.2f}")' \
    $a $b "$(nproc)"
}
wait_quiet() {
  local deadline=$((SECONDS + ${WAIT_QUIET:-120})) busy
  while :; do
    busy="$(busy_cores)"
    python3 -c 'import sys; sys.exit(float(sys.argv[1]) > 0.25)' "$busy" && return
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "Other processes keep $busy cores busy; measuring anyway (see the CPU column)"
      return
    fi
    say "Other processes keep $busy cores busy; waiting for a quiet machine"
    sleep 4
  done
}

# run_case <server label> <route label> <server pid> <base> <token> <part path> <part query> <path>
RESULTS=()
run_case() {
  local server="$1" route="$2" pid="$3" base="$4" token="$5" part_path="$6" part_query="$7" path="$8"
  local env=(BENCH_TOKEN="$token" BENCH_PART_PATH="$part_path" BENCH_PART_QUERY="$part_query")
  say "$server, $route: warm-up ${WARMUP}s, then ${DURATION}s"
  env "${env[@]}" timeout $((WARMUP + 30)) \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/presign.lua "$base$path" >/dev/null
  local machine0 server0 machine1 server1
  # Halfway through, 20 requests of our own show what the server answers under load.
  local auth=() urls=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  for _ in $(seq 20); do urls+=(-o /dev/null "$base$path"); done
  (sleep "$(python3 -c "print($DURATION / 2)")" &&
    curl -s -m 10 -w '%{http_code}\n' "${auth[@]}" "${urls[@]}" |
    sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }' >"$WORK/probe") &
  local probe=$!
  machine0="$(cpu_ticks)"
  server0="$(proc_ticks "$pid")"
  env "${env[@]}" timeout $((DURATION + 30)) /usr/bin/time -f '%U %S' -o "$WORK/wrk.time" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 5s -s bench/presign.lua \
    "$base$path" >"$WORK/wrk.out"
  machine1="$(cpu_ticks)"
  server1="$(proc_ticks "$pid")"
  local figures
  figures="$(grep '^{' "$WORK/wrk.out" | tail -n 1)"
  [ -n "$figures" ] || { cat "$WORK/wrk.out" >&2; die "wrk printed no figures"; }
  wait "$probe" || true
  local status
  status="$(cat "$WORK/probe" 2>/dev/null || true)"
  RESULTS+=("$server|$route|$figures|$machine0 $machine1 $server0 $server1 $(cat "$WORK/wrk.time")|${status:-none}")
}

wait_quiet
PARAMS="/s3/params?filename=bench.mp4&type=video%2Fmp4"
PART="GET /s3/multipart/{id}/{n}"
for which in local serve companion; do
  case "$which" in
    local) name="reelup-server --local" pid=$LOCAL_PID base=$LOCAL token=$LOCAL_TOKEN ;;
    serve) name="reelup-server serve, rate limit raised" pid=$SERVE_PID base=$SERVE token=$SERVE_TOKEN ;;
    companion) name="$COMPANION_NAME" pid=$COMPANION_PID base=$COMPANION token="" ;;
  esac
  read -r part_path part_query <<<"$(create_upload "$base" "$token")"
  run_case "$name" "$PART" "$pid" "$base" "$token" "$part_path" "$part_query" "${part_path}1${part_query}"
  run_case "$name" "GET /s3/params" "$pid" "$base" "$token" "" "" "$PARAMS"
done

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
[ -n "$CPU" ] || CPU="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
if [ -n "${REELUP_SERVER:-}" ]; then
  BUILT="$SERVER"
else
  BUILT="release build of $(git describe --always --dirty 2>/dev/null || echo 'this tree')"
fi
python3 - "$CPU" "$(nproc)" "$(getconf CLK_TCK)" "$DURATION" "$CONNECTIONS" "$THREADS" \
  "$(node --version)" "$(uname -r)" "$(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)" \
  "$BUILT" "$COMPANION_NAME" "${RESULTS[@]}" <<'EOF'
import json, sys
cpu, nproc, hz, duration, conns, threads, node, kernel, wrk, built, companion, *rows = sys.argv[1:]
nproc, hz = int(nproc), int(hz)
print()
print(f"Machine: {nproc} cores ({cpu}), Linux {kernel}, Node.js {node}, {wrk}")
print(f"reelup-server: {built}; {companion} (tests/companion/start.mjs)")
print(f"Load: wrk on the same machine, {threads} thread(s), {conns} connections, "
      f"{duration} s per case after a warm-up; loopback, HTTP/1.1 keep-alive")
print()
print("| server | route | requests/s (OK) | p50 | p99 | failed | server CPU/request "
      "| server / wrk / softirq / other CPU |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
figures = {}
for row in rows:
    server, route, data, cpu_raw, status = row.split("|", 4)
    d = json.loads(data)
    b0, t0, i0, b1, t1, i1, s0, s1, wrk_user, wrk_sys = (float(x) for x in cpu_raw.split())
    secs = d["duration_us"] / 1e6
    ok = d["requests"] - d["non2xx"]
    rate = ok / secs
    failed = d["non2xx"] + d["socket_errors"]
    per_cpu_ticks = (t1 - t0) / nproc
    busy = (b1 - b0) / per_cpu_ticks
    server_cores = (s1 - s0) / per_cpu_ticks
    wrk_cores = (wrk_user + wrk_sys) * hz / per_cpu_ticks
    softirq = (i1 - i0) / per_cpu_ticks
    other = max(0.0, busy - softirq - server_cores - wrk_cores)
    cpu_per_req = (s1 - s0) / hz / max(d["requests"], 1) * 1e6
    figures[(server, route)] = (rate, d["p99_us"] / 1000, failed)
    print(f"| {server} | `{route}` | {rate:,.0f} | {d['p50_us'] / 1000:.2f} ms "
          f"| {d['p99_us'] / 1000:.2f} ms | {failed:,} of {d['requests']:,}"
          f"{f' (probe: {status})' if failed else ''} "
          f"| {cpu_per_req:,.0f} µs | {server_cores:.2f} / {wrk_cores:.2f} / {softirq:.2f} / "
          f"{other:.2f} cores |")
print()
print("failed: answers with status >= 400, or socket errors; probe: the statuses of 20 "
      "requests sent halfway through the run. requests/s counts successful answers only.")
print("server CPU/request: the server process's user+system CPU time over the run divided "
      "by the requests it answered. CPU: cores used during the run by the server, wrk, "
      f"interrupts (loopback TCP) and other processes, out of {nproc}.")
print()
for server in ("reelup-server --local", "reelup-server serve, rate limit raised"):
    rate, p99, failed = figures[(server, "GET /s3/multipart/{id}/{n}")]
    met = rate >= 20000 and p99 < 5 and failed == 0
    print(f"{server}: {rate:,.0f} part URLs/s, p99 {p99:.2f} ms, {failed:,} failed; "
          f"target >= 20,000/s with p99 < 5 ms: {'met' if met else 'NOT met'}")
EOF
