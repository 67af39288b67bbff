#!/usr/bin/env bash
# Fuzzes every parser of outside input for a bounded time and prints what it covered.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# Targets live in fuzz/fuzz_targets (one per parser); their seeds in fuzz/corpus/<target>
# are checked in and never written to. What libFuzzer finds on top goes to a work corpus in
# the fuzz target dir, so later runs start from it. Builds use the nightly toolchain and
# cargo-fuzz (installed here when missing), into their own target dir: $REELUP_FUZZ_TARGET_DIR,
# default fuzz/target, never the main build's $CARGO_TARGET_DIR (other flags, other toolchain).
#
# Exit status: 0 when no target crashed, 1 otherwise (each crash's reproducer is printed;
# replay one with `cargo +nightly fuzz run <target> <file>` in fuzz/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-60}"
shift || true
[[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]] ||
  { echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number of seconds, got \"$SECONDS_PER_TARGET\"" >&2; exit 2; }

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'fuzz.sh: %s\n' "$*" >&2; exit 2; }

rustup run nightly rustc --version >/dev/null 2>&1 ||
  die "the nightly toolchain is needed: rustup toolchain install nightly --profile minimal"
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "Installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

unset CARGO_TARGET_DIR
TARGET_DIR="${REELUP_FUZZ_TARGET_DIR:-$ROOT/fuzz/target}"
# No sanitizer: `unsafe` is forbidden in the workspace, so AddressSanitizer would only slow
# builds and runs; panics, overflow checks (-a) and debug assertions are what find bugs here.
FLAGS=(--sanitizer none --debug-assertions --target-dir "$TARGET_DIR")

cd "$ROOT/fuzz"
if [ $# -gt 0 ]; then
  TARGETS=("$@")
else
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

say "Building ${#TARGETS[@]} fuzz targets (nightly, into $TARGET_DIR)"
if [ $# -gt 0 ]; then
  for t in "${TARGETS[@]}"; do cargo +nightly fuzz build "${FLAGS[@]}" "$t"; done
else
  cargo +nightly fuzz build "${FLAGS[@]}"
fi

LOGS="$TARGET_DIR/fuzz-logs"
mkdir -p "$LOGS"
DATA="$(mktemp -d)"
trap 'rm -rf "$DATA"' EXIT

rows=()
failed=0
for t in "${TARGETS[@]}"; do
  [ -d "corpus/$t" ] || die "no seed corpus fuzz/corpus/$t for target $t"
  work="$TARGET_DIR/corpus/$t"
  mkdir -p "$work" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  say "Fuzzing $t for ${SECONDS_PER_TARGET}s"
  start=$(date +%s)
  status=0
  # The server target runs a local stack; its store lives in a directory removed at exit.
  REELUP_FUZZ_DATA="$DATA/$t" cargo +nightly fuzz run "${FLAGS[@]}" "$t" "$work" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -print_final_stats=1 \
    >"$LOGS/$t.log" 2>&1 || status=$?
  secs=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$LOGS/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(find "$work" -type f | wc -l)
  crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
  if [ "$status" -ne 0 ]; then
    failed=1
    [ "$crashes" -eq 0 ] && crashes="exit $status"
    echo "--- $t failed (log: $LOGS/$t.log):" >&2
    grep -E "panicked at|^Test unit written to|SUMMARY|ERROR" "$LOGS/$t.log" | head -5 >&2 || tail -20 "$LOGS/$t.log" >&2
  fi
  rows+=("$(printf '%-14s %10s %6s %7s %7s %8s %5s' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$crashes" "$secs")")
done

printf '\n%-14s %10s %6s %7s %7s %8s %5s\n' target runs cov ft corpus crashes secs
printf '%s\n' "${rows[@]}"
exit "$failed"
