#!/usr/bin/env bash
# Bandwidth limit benchmark: one file through `reelup upload --limit-rate`, long enough to last
# over a minute, and how close the rate it achieved came to the limit.
#
#   bench/limit-rate.sh                             600 MiB at 8MiB (75 s), 1 run
#   LIMIT_RATE=5MB LIMIT_MIB=400 RUNS=2 bench/limit-rate.sh
#
# The payload is the first LIMIT_MIB MiB of random bytes, made once and kept at
# ~/.cache/reelup-dev/bench-<LIMIT_MIB>MiB.mp4. The achieved rate is the file's bytes over the
# time from its first UploadPart reaching the store to its CompleteMultipartUpload reaching it,
# both from the store's log, so the presigning before and the store's Complete after are not
# counted against the limit; bytes over the whole wall time are shown too. Target: within 3%
# of the limit. It prints figures; it is not a test and asserts nothing.
set -euo pipefail
BENCH_NAME=limit-rate.sh
RUNS="${RUNS:-1}"
# shellcheck source=bench/upload/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/upload/common.sh"

LIMIT_RATE="${LIMIT_RATE:-8MiB}"
LIMIT_MIB="${LIMIT_MIB:-600}"
[[ "$LIMIT_MIB" =~ ^[1-9][0-9]*$ ]] || die "LIMIT_MIB must be a positive number of MiB"
PAYLOAD="$CACHE/bench-${LIMIT_MIB}MiB.mp4" # .mp4: reelup-server only signs for video types
SIZE=$((LIMIT_MIB * MIB))

bench_setup
LIMIT="$("${S3PY[@]}" rate "$LIMIT_RATE")" || die "LIMIT_RATE=$LIMIT_RATE is not a rate"
SECONDS_EXPECTED=$((SIZE / LIMIT))
[ "$SECONDS_EXPECTED" -ge 60 ] ||
  say "$LIMIT_MIB MiB at $LIMIT_RATE takes about $SECONDS_EXPECTED s, less than the 60 s the target asks for"
if [ "$(stat -c %s "$PAYLOAD" 2>/dev/null || echo 0)" != "$SIZE" ]; then
  say "Making $LIMIT_MIB MiB of random bytes at $PAYLOAD (kept for next time)"
  head -c "$SIZE" /dev/urandom >"$PAYLOAD.tmp"
  mv "$PAYLOAD.tmp" "$PAYLOAD"
fi
bench_start_server
cat "$PAYLOAD" >/dev/null # into the page cache

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
  say "reelup upload --limit-rate $LIMIT_RATE, $LIMIT_MIB MiB (about $SECONDS_EXPECTED s), run $run of $RUNS"
  note="" key=""
  bench_timed env "${REELUP_ENV[@]}" "$CLI" upload "$PAYLOAD" "${REELUP_ARGS[@]}" --limit-rate "$LIMIT_RATE"
  mapfile -t st < <(store_times)
  ok=1
  if [ "$RC" = 0 ]; then
    key="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["key"])' "$WORK/out")" ||
      { ok=0; note="no key in its --json output"; }
  else
    ok=0
    note="exit $RC: $(tail -n 3 "$WORK/err" | tr '\t\n' '  ' | cut -c1-300)"
  fi
  if [ "$ok" = 1 ] && ! "${S3PY[@]}" check "$key" "$SIZE" 2>"$WORK/check"; then
    ok=0
    note="uploaded but $(tr '\t\n' '  ' <"$WORK/check" | cut -c1-300)"
  fi
  [ "$ok" = 1 ] || printf 'limit-rate.sh: run %s failed: %s\n' "$run" "$note" >&2
  "${S3PY[@]}" record "$RESULTS" tool="reelup upload" run="$run" ok="$ok" times="$TIMES" \
    store_cpu="$STORE_CPU" first="${st[0]}" complete_at="${st[1]}" ops="${st[3]}" at_once="${st[4]}" note="$note"
  [ -z "$key" ] || "${S3PY[@]}" delete "$key" 2>/dev/null || true
  sync
done

bench_info "$WORK/info.json" limit size="$SIZE" limit="$LIMIT" limit_text="$LIMIT_RATE" \
  "tool=reelup upload|$REELUP_PART_MIB MiB parts, $REELUP_PARTS_IN_FLIGHT in flight"
"${S3PY[@]}" table "$RESULTS" "$WORK/info.json"
