#!/usr/bin/env bash
# Many-files benchmark: a folder of FILES clips of 2-10 MB (random bytes, sizes from a fixed
# seed) through `reelup upload DIR/*` and through aws-cli and rclone, into one embedded store
# (reelup-server --local, s3s-fs, SigV4 checked) on loopback.
#
#   bench/many.sh                      1,000 files (about 6 GB), 3 runs per tool
#   FILES=50 RUNS=1 bench/many.sh      a quick try
#   REELUP_PARTS_IN_FLIGHT=8 bench/many.sh   other reelup settings (as bench/upload.sh)
#   POSTERS=1 bench/many.sh            let reelup run ffmpeg for posters, as users get it
#   PERF=1 bench/many.sh               one reelup run under `perf record -g` instead: the
#                                      top symbols by self time
#
# Clients, each to a fresh prefix of the same bucket, in turn (the order rotates every round):
#   reelup upload DIR/*          the real path: presign endpoint + direct POSTs/PUTs to the store
#   aws s3 cp --recursive        awscli v1 defaults (10 requests at once, multipart from 8 MiB)
#   rclone copy                  4 transfers at once, single PUTs below its 200 MiB cutoff
# Measured as bench/upload.sh does: GNU time for the client (wall, user+sys CPU, peak RSS), the
# store's CPU from /proc. Each run is then checked with boto3 (every file's object present with
# its size, nothing else under the prefix); a run that fails either way is shown and not
# counted. The files are made once and kept in ~/.cache/reelup-dev/bench-files-$FILES/.
set -euo pipefail
BENCH_NAME=many.sh
PERF="${PERF:-0}"
[ "$PERF" = 0 ] || BENCH_DEBS=linux-perf
# shellcheck source=bench/upload/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/upload/common.sh"

FILES="${FILES:-1000}"
SEED="${SEED:-15}"
[[ "$FILES" =~ ^[1-9][0-9]*$ ]] || die "FILES must be a positive number"
DIR="$CACHE/bench-files-$FILES"

bench_setup
say "Making $FILES files of 2-10 MB in $DIR (kept for next time; skipped if already there)"
"${S3PY[@]}" make-files "$DIR" "$FILES" "$SEED"
bench_start_server
read -r TOTAL SMALLEST LARGEST < <(find "$DIR" -maxdepth 1 -name '*.mp4' -printf '%s\n' |
  awk 'NR == 1 {min = $1; max = $1} {t += $1; if ($1 < min) min = $1; if ($1 > max) max = $1}
       END {printf "%.0f %.0f %.0f\n", t, min, max}')
cat "$DIR"/*.mp4 >/dev/null # into the page cache, so no client pays for the disk

if [ "$PERF" != 0 ]; then
  bench_perf many env "${REELUP_ENV[@]}" REELUP_DATA_DIR="$WORK/queue-perf" "$CLI" upload \
    "$DIR"/*.mp4 "${REELUP_ARGS[@]}"
  exit 0
fi

TOOLS=("reelup upload" "aws s3 cp --recursive" "rclone copy")
SETTINGS=(
  "$REELUP_PARTS_IN_FLIGHT in flight, multipart from 16 MiB$REELUP_DEFAULTS"
  "awscli $AWSCLI_VERSION defaults: 10 in flight, multipart from 8 MiB"
  "rclone $RCLONE_VERSION, 4 transfers, single PUTs"
)
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
RUN_ID="$(python3 -c 'import secrets; print(secrets.token_hex(4))')"

# run_one <tool index> <run number>: one timed upload of the folder, checked, recorded, removed.
run_one() {
  local i="$1" run="$2" tool="${TOOLS[$1]}"
  local prefix="bench/$RUN_ID/$i-$run/" cmd=() reelup_out=()
  case "$i" in
    # A fresh queue per run, so no run starts with the last one's thousand rows.
    0) cmd=(env "${REELUP_ENV[@]}" REELUP_DATA_DIR="$WORK/queue-$run" "$CLI" upload "$DIR"/*.mp4
         "${REELUP_ARGS[@]}") ;;
    1) cmd=(env "${AWS_ENV[@]}" "$AWS" s3 cp --recursive "$DIR" "s3://$BENCH_BUCKET/$prefix"
         --endpoint-url "$BENCH_S3" --no-progress --only-show-errors) ;;
    2) cmd=(env "${RCLONE_ENV[@]}" rclone copy "$DIR" "BENCH:$BENCH_BUCKET/$prefix") ;;
  esac
  say "$tool, $FILES files, run $run of $RUNS"
  local note="" st
  bench_timed "${cmd[@]}"
  # Read before the checks below add their own requests to the log.
  mapfile -t st < <(store_times)
  if [ "$i" = 0 ]; then
    # reelup names each key itself, under the user's prefix, and prints it per file.
    prefix="$(python3 -c 'import json,sys
for line in open(sys.argv[1]):
    key = json.loads(line).get("key")
    if key:
        print(key.rsplit("/", 1)[0] + "/"); break' "$WORK/out" 2>/dev/null || true)"
    reelup_out=("$WORK/out")
    [ -n "$prefix" ] || { note="no key in its --json output"; [ "$RC" != 0 ] || RC=1; }
  fi
  local ok=1 found=("" "")
  if [ "$RC" != 0 ]; then
    ok=0
    [ -n "$note" ] || note="exit $RC: $(tail -n 3 "$WORK/err" | tr '\t\n' '  ' | cut -c1-300)"
  fi
  if [ -n "$prefix" ]; then
    if ! "${S3PY[@]}" verify "$DIR" "$prefix" "${reelup_out[@]}" >"$WORK/found" 2>"$WORK/check"; then
      ok=0
      [ -n "$note" ] || note="uploaded but $(tr '\t\n' '  ' <"$WORK/check" | cut -c1-300)"
    fi
    read -r -a found <"$WORK/found" || true
  fi
  [ "$ok" = 1 ] || printf 'many.sh: %s run %s failed: %s\n' "$tool" "$run" "$note" >&2
  "${S3PY[@]}" record "$RESULTS" tool="$tool" run="$run" ok="$ok" times="$TIMES" \
    store_cpu="$STORE_CPU" first="${st[0]}" objects="${found[0]:-}" bytes="${found[1]:-}" ops="${st[3]}" at_once="${st[4]}" \
    note="$note"
  [ -z "$prefix" ] || "${S3PY[@]}" delete-prefix "$prefix" 2>/dev/null || true
  rm -rf "$WORK/queue-$run"
  # Leaves no writeback of this run's gigabytes for the next one to pay for.
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
bench_info "$WORK/info.json" many files="$FILES" bytes="$TOTAL" smallest="$SMALLEST" \
  largest="$LARGEST" seed="$SEED" "${tool_args[@]}"
"${S3PY[@]}" table "$RESULTS" "$WORK/info.json"
