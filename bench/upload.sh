#!/usr/bin/env bash
# Upload benchmark: 1 GiB through `reelup upload` and through the usual other clients, into one
# embedded store (reelup-server --local, s3s-fs, SigV4 checked) on loopback.
#
#   bench/upload.sh                    3 runs per tool
#   RUNS=5 bench/upload.sh
#   REELUP_PART_MIB=8 REELUP_PARTS_IN_FLIGHT=8 bench/upload.sh    other reelup settings
#   POSTERS=1 bench/upload.sh          let reelup run ffmpeg for a poster, as users get it
#   PERF=1 bench/upload.sh             one reelup upload under `perf record -g` instead: the
#                                      top symbols by self time (where its CPU goes)
#
# Sibling cases: bench/many.sh (1,000 files of 2-10 MB), bench/limit-rate.sh (--limit-rate).
#
# Clients, each to a fresh key, in turn (the order rotates every round):
#   reelup upload      the real path: presign endpoint (reelup-server) + direct PUTs to the store
#   aws s3 cp          awscli v1 (pinned, own venv) straight to the store, path-style, defaults
#   rclone copyto      S3 remote from RCLONE_CONFIG_BENCH_* env vars, 8 MiB chunks, 4 at once
#   curl -T            one PUT to a URL presigned by boto3: the raw ceiling of the store
# GNU time measures the client process only: wall time, user+sys CPU, peak RSS. The store's
# own CPU time during each run is read from /proc as well (it shares the 2 cores), and its log
# says when each client's first part and its CompleteMultipartUpload arrived ("before
# Complete"). Every upload is checked afterwards with a HEAD for its size; a run that fails
# either way is shown and not counted. Prints a Markdown table of medians and the issue's
# target ratios; it is not a test and asserts nothing.
set -euo pipefail
BENCH_NAME=upload.sh
PERF="${PERF:-0}"
[ "$PERF" = 0 ] || BENCH_DEBS=linux-perf
# shellcheck source=bench/upload/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/upload/common.sh"

PAYLOAD="$CACHE/bench-1GiB.mp4" # .mp4: reelup-server only signs for video types
SIZE=$((1024 * MIB))

bench_setup
if [ "$(stat -c %s "$PAYLOAD" 2>/dev/null || echo 0)" != "$SIZE" ]; then
  say "Making 1 GiB of random bytes at $PAYLOAD (kept for next time)"
  head -c "$SIZE" /dev/urandom >"$PAYLOAD.tmp"
  mv "$PAYLOAD.tmp" "$PAYLOAD"
fi
bench_start_server
cat "$PAYLOAD" >/dev/null # into the page cache, so no client pays for the disk

if [ "$PERF" != 0 ]; then
  bench_perf upload env "${REELUP_ENV[@]}" "$CLI" upload "$PAYLOAD" "${REELUP_ARGS[@]}"
  exit 0
fi

TOOLS=("reelup upload" "aws s3 cp" "rclone copyto" "curl -T (presigned PUT)")
SETTINGS=(
  "$REELUP_PART_MIB MiB parts, $REELUP_PARTS_IN_FLIGHT in flight$REELUP_DEFAULTS"
  "awscli $AWSCLI_VERSION defaults: 8 MiB parts, 10 in flight"
  "rclone $RCLONE_VERSION, 8 MiB chunks, 4 in flight"
  "curl $(curl --version | awk 'NR == 1 {print $2}'), one PUT"
)
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
RUN_ID="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"

# run_one <tool index> <run number>: one timed upload, checked, recorded, then removed.
run_one() {
  local i="$1" run="$2" tool="${TOOLS[$1]}"
  local key="bench/$RUN_ID/$i-$run.mp4" cmd=()
  case "$i" in
    0) cmd=(env "${REELUP_ENV[@]}" "$CLI" upload "$PAYLOAD" "${REELUP_ARGS[@]}") ;;
    1) cmd=(env "${AWS_ENV[@]}" "$AWS" s3 cp "$PAYLOAD" "s3://$BENCH_BUCKET/$key"
         --endpoint-url "$BENCH_S3" --no-progress --only-show-errors) ;;
    2) cmd=(env "${RCLONE_ENV[@]}" rclone copyto "$PAYLOAD" "BENCH:$BENCH_BUCKET/$key") ;;
    3) local url
       url="$("${S3PY[@]}" presign "$key")"
       cmd=(curl -sS -f -T "$PAYLOAD" -H "Expect:" -o /dev/null "$url") ;;
  esac
  say "$tool, run $run of $RUNS"
  local note="" st
  bench_timed "${cmd[@]}"
  # Read before the checks below add their own requests to the log.
  mapfile -t st < <(store_times)
  # reelup chooses the key itself (under the user's prefix) and says which.
  if [ "$i" = 0 ] && [ "$RC" = 0 ]; then
    key="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["key"])' "$WORK/out")" ||
      { RC=1; note="no key in its --json output"; }
  fi
  local ok=1
  if [ "$RC" != 0 ]; then
    ok=0
    [ -n "$note" ] || note="exit $RC: $(tail -n 3 "$WORK/err" | tr '\t\n' '  ' | cut -c1-300)"
  elif ! "${S3PY[@]}" check "$key" "$SIZE" 2>"$WORK/check"; then
    ok=0
    note="uploaded but $(tr '\t\n' '  ' <"$WORK/check" | cut -c1-300)"
  fi
  [ "$ok" = 1 ] || printf 'upload.sh: %s run %s failed: %s\n' "$tool" "$run" "$note" >&2
  "${S3PY[@]}" record "$RESULTS" tool="$tool" run="$run" ok="$ok" times="$TIMES" \
    store_cpu="$STORE_CPU" first="${st[0]}" complete_at="${st[1]}" \
    api_complete="${st[2]}" ops="${st[3]}" at_once="${st[4]}" note="$note"
  "${S3PY[@]}" delete "$key" 2>/dev/null || true
  # Leaves no writeback of this run's gigabyte for the next one to pay for.
  sync
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
  for step in "${!TOOLS[@]}"; do
    run_one $(((step + run - 1) % ${#TOOLS[@]})) "$run"
  done
done

tool_args=()
for i in "${!TOOLS[@]}"; do tool_args+=("tool=${TOOLS[$i]}|${SETTINGS[$i]}"); done
bench_info "$WORK/info.json" 1gib size="$SIZE" "${tool_args[@]}"
"${S3PY[@]}" table "$RESULTS" "$WORK/info.json"
