# shellcheck shell=bash disable=SC2034  # the variables set here are for the sourcing scripts
# Shared by bench/upload.sh, bench/many.sh and bench/limit-rate.sh (sourced, not run): the
# tools they install, the store they all upload to, the peers' settings, how one client run
# is timed, and what every table records about the machine and the code.
#
# The sourcing script sets BENCH_NAME (for messages) and may set BENCH_DEBS (extra Debian
# packages), then calls, in order: bench_setup, bench_start_server, and bench_timed per run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelup-target}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/reelup-dev"
RUNS="${RUNS:-3}"
REELUP_PART_MIB="${REELUP_PART_MIB:-16}"
REELUP_PARTS_IN_FLIGHT="${REELUP_PARTS_IN_FLIGHT:-4}"
AWSCLI_VERSION=1.46.3
BOTO3_VERSION=1.44.5 # the boto3 whose botocore awscli $AWSCLI_VERSION pins
BENCH_VENV="$CACHE/bench-venv"
MIB=$((1024 * 1024))

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

# Debian packages (apt-get, with sudo when not root), Python tools (own venv, pinned), and the
# release build of the working tree.
bench_setup() {
  [[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
  command -v python3 >/dev/null || die "python3 is needed"
  command -v curl >/dev/null || die "curl is needed"
  command -v cargo >/dev/null || die "cargo is needed"

  local missing=() deb
  [ -x /usr/bin/time ] || missing+=(time)
  command -v rclone >/dev/null || missing+=(rclone)
  for deb in ${BENCH_DEBS:-}; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'ok installed' || missing+=("$deb")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "Installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  fi

  mkdir -p "$CACHE"
  if [[ "$("$BENCH_VENV/bin/aws" --version 2>&1)" != *"aws-cli/$AWSCLI_VERSION "* ]] ||
    ! "$BENCH_VENV/bin/python" -c "import boto3; assert boto3.__version__ == '$BOTO3_VERSION'" 2>/dev/null; then
    say "Installing awscli $AWSCLI_VERSION and boto3 $BOTO3_VERSION into $BENCH_VENV"
    rm -rf "$BENCH_VENV"
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check \
      "awscli==$AWSCLI_VERSION" "boto3==$BOTO3_VERSION"
  fi
  PY="$BENCH_VENV/bin/python"
  AWS="$BENCH_VENV/bin/aws"
  S3PY=(env PYTHONDONTWRITEBYTECODE=1 "$PY" "$ROOT/bench/upload/s3.py")

  say "Building reelup-server and reelup (release, target dir $CARGO_TARGET_DIR)"
  cargo build --release --quiet -p reelup-server -p reelup-cli
  SERVER="$CARGO_TARGET_DIR/release/reelup-server"
  CLI="$CARGO_TARGET_DIR/release/reelup"

  # Which code was measured: the commit, and whether the Rust sources differ from it.
  REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no git")"
  if [ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
    REV="$REV + uncommitted changes in crates/"
  fi

  WORK="$(mktemp -d)"
  # reelup runs with a PATH that has no ffmpeg: the payloads are random bytes, where ffmpeg
  # can only fail to draw a poster, and the peers make no posters either.
  mkdir -p "$WORK/no-ffmpeg"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  # set -e alone ends the script without a word; this says where.
  set -E
  trap 'printf "%s: line %s: a command failed (exit %s)\n" "$BENCH_NAME" "$LINENO" "$?" >&2' ERR
}

SERVER_PID=""
CLIENT_PID=""
bench_cleanup() {
  if [ -n "$CLIENT_PID" ]; then
    # GNU time's (or perf's) child first, then the wrapper itself.
    pkill -TERM -P "$CLIENT_PID" 2>/dev/null || true
    kill "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# One reelup-server --local (its embedded s3s-fs store checks SigV4) with fixed keys, so every
# client uploads to the same store, and the peers' settings for it.
bench_start_server() {
  BENCH_KEY_ID="BENCH$(python3 -c 'import secrets; print(secrets.token_hex(6).upper())')"
  BENCH_KEY_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
  export BENCH_KEY_ID BENCH_KEY_SECRET

  say "Starting reelup-server --local"
  # One line per presign request with its duration (reelup_server::api), and per store request
  # one when its route is resolved, with a timestamp and the S3 operation (s3s::ops), and one
  # with its duration (s3s::service): when the first part and the CompleteMultipartUpload
  # reached the store, whoever sent them, and how many requests it had in hand at once.
  REELUP_LOG="warn,s3s=off,s3s::ops=debug,s3s::ops::signature=off,s3s::service=debug,reelup_server::api=debug" \
    NO_COLOR=1 REELUP_LOCAL_S3_ACCESS_KEY="$BENCH_KEY_ID" \
    REELUP_LOCAL_S3_SECRET_KEY="$BENCH_KEY_SECRET" \
    "$SERVER" --local --listen 127.0.0.1:0 --data-dir "$WORK/data" \
    >"$WORK/server.ready" 2>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 300); do
    [ -s "$WORK/server.ready" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "reelup-server did not start"; }
    sleep 0.1
  done
  local line
  line="$(head -n 1 "$WORK/server.ready")"
  [ -n "$line" ] || die "reelup-server did not say it was ready within 30 s"
  ENDPOINT="$(json "$line" endpoint)"
  CDN="$(json "$line" cdn)"
  TOKEN="$(json "$line" token)"
  BENCH_S3="$(json "$line" s3)"
  BENCH_BUCKET="$(json "$line" bucket)"
  export BENCH_S3 BENCH_BUCKET

  # aws-cli: its own config file (path-style), keys from the environment, nothing of the user's.
  AWS_ENV=(
    -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_DEFAULT_PROFILE
    AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
    AWS_ACCESS_KEY_ID="$BENCH_KEY_ID" AWS_SECRET_ACCESS_KEY="$BENCH_KEY_SECRET"
    AWS_DEFAULT_REGION=us-east-1
  )
  : >"$WORK/aws-credentials"
  env "${AWS_ENV[@]}" "$AWS" configure set default.s3.addressing_style path

  # rclone: a remote named BENCH from env vars only; it refuses to start with AWS_CA_BUNDLE set.
  RCLONE_ENV=(
    -u AWS_CA_BUNDLE
    RCLONE_CONFIG="$WORK/rclone.conf"
    RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$BENCH_KEY_ID"
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$BENCH_KEY_SECRET"
    RCLONE_CONFIG_BENCH_ENDPOINT="$BENCH_S3" RCLONE_CONFIG_BENCH_REGION=us-east-1
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true RCLONE_CONFIG_BENCH_NO_CHECK_BUCKET=true
    RCLONE_CONFIG_BENCH_CHUNK_SIZE=8M RCLONE_CONFIG_BENCH_UPLOAD_CONCURRENCY=4
  )
  : >"$WORK/rclone.conf"

  # reelup: the token from the environment, its queue in the temp dir, no ffmpeg (see
  # bench_setup) unless POSTERS=1.
  local path="$WORK/no-ffmpeg"
  [ "${POSTERS:-0}" = 0 ] || path="$PATH"
  REELUP_ENV=(PATH="$path" REELUP_TOKEN="$TOKEN" REELUP_DATA_DIR="$WORK/queue")
  REELUP_ARGS=(--endpoint "$ENDPOINT" --cdn "$CDN" --json
    --part-size-mib "$REELUP_PART_MIB" --parts-in-flight "$REELUP_PARTS_IN_FLIGHT")
  REELUP_DEFAULTS=""
  [ "$REELUP_PART_MIB/$REELUP_PARTS_IN_FLIGHT" != 16/4 ] || REELUP_DEFAULTS=" (the CLI's defaults)"
  # awk reads to the end: with `head`, rclone could die of SIGPIPE and pipefail end the script.
  RCLONE_VERSION="$(rclone version 2>/dev/null | awk 'NR == 1 {print $2}')"
  TICKS="$(getconf CLK_TCK)"
}

# CPU seconds the store process has used so far.
server_cpu() { sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk -v t="$TICKS" '{printf "%.2f", ($12 + $13) / t}'; }

# bench_timed CMD...: runs one client under GNU time (wall, user, sys, peak RSS into
# $WORK/time), stdout to $WORK/out, stderr to $WORK/err. Sets RC (its exit status), START
# (epoch seconds when it was started), LOG_FROM (the first server log line it caused),
# STORE_CPU (seconds the store spent meanwhile) and TIMES (wall, user, sys, RSS KiB; TSV).
bench_timed() {
  local before after
  RC=0
  LOG_FROM=$(($(wc -l <"$WORK/server.log") + 1))
  before="$(server_cpu)"
  START="$(date +%s.%N)"
  /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || RC=$?
  CLIENT_PID=""
  after="$(server_cpu)"
  STORE_CPU="$(python3 -c "print(f'{$after - $before:.2f}')")"
  TIMES="$(tail -n 1 "$WORK/time" 2>/dev/null)"
  [[ "$TIMES" =~ ^[0-9.]+$'\t'[0-9.]+$'\t'[0-9.]+$'\t'[0-9]+$ ]] || TIMES=$'0\t0\t0\t0'
}

# store_times: what the store's log says about the run bench_timed just made (seconds after
# START: first byte-carrying request, last CompleteMultipartUpload; reelup's Complete as its
# presign API timed it; the store's operations counted; byte-carrying requests in hand at
# once, mean), one per line, empty where none.
store_times() {
  "${S3PY[@]}" storelog "$WORK/server.log" "$LOG_FROM" "$START"
}

# bench_perf NAME CMD...: one run of CMD under `perf record -g`, the store recorded alongside
# (`-p`), then the top symbols of each by self time. The recordings are kept as
# ~/.cache/reelup-dev/perf-NAME-{client,store}.data for `perf report -i` (call graphs and all).
bench_perf() {
  local name="$1"
  shift
  local client="$CACHE/perf-$name-client.data" store="$CACHE/perf-$name-store.data" store_pid
  # perf is root-only on most kernels (perf_event_paranoid); say so rather than fail later.
  if [ "$(id -u)" -ne 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 1 ]; then
    say "perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid): perf may refuse; run as root or lower it"
  fi
  say "perf record -g: the client, and the store alongside"
  perf record -g -p "$SERVER_PID" -o "$store" >"$WORK/perf-store.log" 2>&1 &
  store_pid=$!
  sleep 0.5 # perf attaches before the client starts
  RC=0
  perf record -g -o "$client" -- "$@" >"$WORK/out" 2>"$WORK/err" &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || RC=$?
  CLIENT_PID=""
  kill -INT "$store_pid" 2>/dev/null || true
  wait "$store_pid" 2>/dev/null || true
  [ "$RC" = 0 ] || { tail -n 5 "$WORK/err" >&2; die "the profiled run failed (exit $RC)"; }
  local what data
  for what in client store; do
    data="$CACHE/perf-$name-$what.data"
    perf report -i "$data" --no-children --stdio -g none -F overhead,dso,sym \
      --percent-limit 0.1 >"$WORK/report" 2>/dev/null || true
    echo
    echo "Top symbols of the $what by self time (perf report --no-children, $data;" \
      "samples: $(awk '/^# Samples: / && !n++ {sub(/^# Samples: /, ""); print}' "$WORK/report")):"
    echo
    echo '```'
    grep -v '^#' "$WORK/report" | grep -v '^$' | head -n "${PERF_TOP:-25}" || true
    echo '```'
  done
}

# bench_info OUT CASE [KEY=VALUE...]: the machine, the load, the code and what ran, as JSON
# for s3.py's tables. LOAD_BEFORE must have been read before the first run.
bench_info() {
  local out="$1" case="$2"
  shift 2
  local cpu_model
  cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  [ -n "$cpu_model" ] || cpu_model="$(lscpu 2>/dev/null | awk -F': *' '/^Model name:/ && !n++ {print $2}')"
  python3 - "$out" "$case" "$(nproc)" "$cpu_model" "$(uname -r)" \
    "$(free -h | awk '/^Mem:/ {print $2}')" "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$RUNS" "$REV" "$@" <<'EOF'
import json, sys
out, case, nproc, cpu, kernel, mem, lb, la, runs, rev, *extra = sys.argv[1:]
info = {"case": case, "nproc": nproc, "cpu": cpu, "kernel": kernel, "mem": mem,
        "load_before": lb, "load_after": la, "runs": int(runs), "rev": rev, "tools": []}
for kv in extra:
    k, v = kv.split("=", 1)
    if k == "tool":
        name, settings = v.split("|", 1)
        info["tools"].append({"name": name, "settings": settings})
    else:
        info[k] = v
json.dump(info, open(out, "w"))
EOF
}
