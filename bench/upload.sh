#!/usr/bin/env bash
# Upload benchmark: 1 GiB through `reelup upload` and through the usual other clients, into one
# embedded store (reelup-server --local, s3s-fs, SigV4 checked) on loopback.
#
#   bench/upload.sh                    3 runs per tool
#   RUNS=5 bench/upload.sh
#   REELUP_PART_MIB=8 REELUP_PARTS_IN_FLIGHT=8 bench/upload.sh    other reelup settings
#
# Clients, each to a fresh key, in turn (the order rotates every round):
#   reelup upload      the real path: presign endpoint (reelup-server) + direct PUTs to the store
#   aws s3 cp          awscli v1 (pinned, own venv) straight to the store, path-style, defaults
#   rclone copyto      S3 remote from RCLONE_CONFIG_BENCH_* env vars, 8 MiB chunks, 4 at once
#   curl -T            one PUT to a URL presigned by boto3: the raw ceiling of the store
# GNU time measures the client process only: wall time, user+sys CPU, peak RSS. The store's
# own CPU time during each run is read from /proc as well (it shares the 2 cores). Every
# upload is checked afterwards with a HEAD for its size; a run that fails either way is shown
# and not counted. Prints a Markdown table of medians; it is not a test and asserts nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelup-target}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/reelup-dev"
RUNS="${RUNS:-3}"
REELUP_PART_MIB="${REELUP_PART_MIB:-16}"
REELUP_PARTS_IN_FLIGHT="${REELUP_PARTS_IN_FLIGHT:-4}"
AWSCLI_VERSION=1.46.3
BOTO3_VERSION=1.44.5 # the boto3 whose botocore awscli $AWSCLI_VERSION pins
BENCH_VENV="$CACHE/bench-venv"
PAYLOAD="$CACHE/bench-1GiB.mp4" # .mp4: reelup-server only signs for video types
SIZE=$((1024 * 1024 * 1024))

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'upload.sh: %s\n' "$*" >&2; exit 1; }

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
command -v cargo >/dev/null || die "cargo is needed"

missing=()
[ -x /usr/bin/time ] || missing+=(time)
command -v rclone >/dev/null || missing+=(rclone)
if [ ${#missing[@]} -gt 0 ]; then
  say "Installing ${missing[*]}"
  sudo=()
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

say "Building reelup-server and reelup (release, target dir $CARGO_TARGET_DIR)"
cargo build --release --quiet -p reelup-server -p reelup-cli
SERVER="$CARGO_TARGET_DIR/release/reelup-server"
CLI="$CARGO_TARGET_DIR/release/reelup"

if [ "$(stat -c %s "$PAYLOAD" 2>/dev/null || echo 0)" != "$SIZE" ]; then
  say "Making 1 GiB of random bytes at $PAYLOAD (kept for next time)"
  head -c "$SIZE" /dev/urandom >"$PAYLOAD.tmp"
  mv "$PAYLOAD.tmp" "$PAYLOAD"
fi

WORK="$(mktemp -d)"
SERVER_PID=""
CLIENT_PID=""
cleanup() {
  if [ -n "$CLIENT_PID" ]; then
    # GNU time's child first, then time itself.
    pkill -TERM -P "$CLIENT_PID" 2>/dev/null || true
    kill "$CLIENT_PID" 2>/dev/null || true
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

BENCH_KEY_ID="BENCH$(python3 -c 'import secrets; print(secrets.token_hex(6).upper())')"
BENCH_KEY_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
export BENCH_KEY_ID BENCH_KEY_SECRET

say "Starting reelup-server --local"
# Debug for the API only: one line per request with its duration, to time reelup's Complete.
REELUP_LOG="warn,s3s=off,reelup_server::api=debug" REELUP_LOCAL_S3_ACCESS_KEY="$BENCH_KEY_ID" \
  REELUP_LOCAL_S3_SECRET_KEY="$BENCH_KEY_SECRET" \
  "$SERVER" --local --listen 127.0.0.1:0 --data-dir "$WORK/data" \
  >"$WORK/server.ready" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 300); do
  [ -s "$WORK/server.ready" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "reelup-server did not start"; }
  sleep 0.1
done
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

REELUP_DEFAULTS=""
[ "$REELUP_PART_MIB/$REELUP_PARTS_IN_FLIGHT" != 16/4 ] || REELUP_DEFAULTS=" (the CLI's defaults)"
TOOLS=("reelup upload" "aws s3 cp" "rclone copyto" "curl -T (presigned PUT)")
SETTINGS=(
  "$REELUP_PART_MIB MiB parts, $REELUP_PARTS_IN_FLIGHT in flight$REELUP_DEFAULTS"
  "awscli $AWSCLI_VERSION defaults: 8 MiB parts, 10 in flight"
  "rclone $(rclone version 2>/dev/null | head -n 1 | awk '{print $2}'), 8 MiB chunks, 4 in flight"
  "curl $(curl --version | head -n 1 | awk '{print $2}'), one PUT"
)
TICKS="$(getconf CLK_TCK)"
# CPU seconds the store process has used so far.
server_cpu() { sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk -v t="$TICKS" '{printf "%.2f", ($12 + $13) / t}'; }

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
RUN_ID="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"

# run_one <tool index> <run number>: one timed upload, checked, recorded, then removed.
run_one() {
  local i="$1" run="$2" tool="${TOOLS[$1]}"
  local key="bench/$RUN_ID/$i-$run.mp4" cmd=()
  case "$i" in
    0) cmd=(env REELUP_TOKEN="$TOKEN" REELUP_DATA_DIR="$WORK/queue" "$CLI" upload "$PAYLOAD" --endpoint "$ENDPOINT" --cdn "$CDN"
         --json --part-size-mib "$REELUP_PART_MIB" --parts-in-flight "$REELUP_PARTS_IN_FLIGHT") ;;
    1) cmd=(env "${AWS_ENV[@]}" "$AWS" s3 cp "$PAYLOAD" "s3://$BENCH_BUCKET/$key"
         --endpoint-url "$BENCH_S3" --no-progress --only-show-errors) ;;
    2) cmd=(env "${RCLONE_ENV[@]}" rclone copyto "$PAYLOAD" "BENCH:$BENCH_BUCKET/$key") ;;
    3) local url
       url="$("$PY" bench/upload/s3.py presign "$key")"
       cmd=(curl -sS -f -T "$PAYLOAD" -H "Expect:" -o /dev/null "$url") ;;
  esac
  say "$tool, run $run of $RUNS"
  local before after rc=0 note="" log_lines
  before="$(server_cpu)"
  log_lines="$(wc -l <"$WORK/server.log")"
  /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$WORK/time" "${cmd[@]}" >"$WORK/out" 2>"$WORK/err" &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  after="$(server_cpu)"
  # reelup chooses the key itself (under the user's prefix) and says which.
  if [ "$i" = 0 ] && [ "$rc" = 0 ]; then
    key="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["key"])' "$WORK/out")" ||
      { rc=1; note="no key in its --json output"; }
  fi
  local ok=1
  if [ "$rc" != 0 ]; then
    ok=0
    [ -n "$note" ] || note="exit $rc: $(tail -n 3 "$WORK/err" | tr '\t\n' '  ' | cut -c1-300)"
  elif ! "$PY" bench/upload/s3.py check "$key" "$SIZE" 2>"$WORK/check"; then
    ok=0
    note="uploaded but $(tr '\t\n' '  ' <"$WORK/check" | cut -c1-300)"
  fi
  [ "$ok" = 1 ] || printf 'upload.sh: %s run %s failed: %s\n' "$tool" "$run" "$note" >&2
  # How long the store's CompleteMultipartUpload took for reelup (its API logs each request).
  local complete=""
  if [ "$i" = 0 ]; then
    complete="$(tail -n +"$((log_lines + 1))" "$WORK/server.log" | sed 's/\x1b\[[0-9;]*m//g' |
      { grep '/complete' || true; } | sed -n 's/.*micros=\([0-9]*\).*/\1/p' | tail -n 1)"
    [ -z "$complete" ] || complete="$(python3 -c "print(f'{$complete / 1e6:.2f}')")"
  fi
  local times
  times="$(tail -n 1 "$WORK/time" 2>/dev/null)"
  [[ "$times" =~ ^[0-9.]+$'\t'[0-9.]+$'\t'[0-9.]+$'\t'[0-9]+$ ]] || times=$'0\t0\t0\t0'
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$run" "$ok" "$times" \
    "$(python3 -c "print(f'{$after - $before:.2f}')")" "$complete" "$note" >>"$RESULTS"
  "$PY" bench/upload/s3.py delete "$key" 2>/dev/null || true
  # Leaves no writeback of this run's gigabyte for the next one to pay for.
  sync
}

# Which code was measured: the commit, and whether the Rust sources differ from it.
REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no git")"
if [ -n "$(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
  REV="$REV + uncommitted changes in crates/"
fi
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
cat "$PAYLOAD" >/dev/null # into the page cache, so no client pays for the disk
for run in $(seq "$RUNS"); do
  for step in "${!TOOLS[@]}"; do
    run_one $(((step + run - 1) % ${#TOOLS[@]})) "$run"
  done
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
[ -n "$CPU_MODEL" ] || CPU_MODEL="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
python3 - "$WORK/info.json" "$(nproc)" "$CPU_MODEL" "$(uname -r)" \
  "$(free -h | awk '/^Mem:/ {print $2}')" "$LOAD_BEFORE" "$LOAD_AFTER" "$RUNS" "$SIZE" "$REV" \
  "${TOOLS[@]}" -- "${SETTINGS[@]}" <<'EOF'
import json, sys
out, nproc, cpu, kernel, mem, lb, la, runs, size, rev, *rest = sys.argv[1:]
sep = rest.index("--")
names, settings = rest[:sep], rest[sep + 1:]
json.dump({"nproc": nproc, "cpu": cpu, "kernel": kernel, "mem": mem, "load_before": lb,
           "load_after": la, "runs": int(runs), "size": int(size), "rev": rev,
           "tools": [{"name": n, "settings": s} for n, s in zip(names, settings)]},
          open(out, "w"))
EOF
"$PY" bench/upload/s3.py table "$RESULTS" "$WORK/info.json"
