#!/usr/bin/env bash
# Queue-view benchmark: the real app with 1,000 items, against a list rebuilt per event.
#
#   bench/ui.sh                      8 s of uploads per measurement
#   BENCH_SECONDS=20 bench/ui.sh
#
# Runs tests/app/bench_queue_ui.py (its docstring says what it measures) with the real-app
# test fixtures: Xvfb, the local stack, a private D-Bus with gnome-keyring, tauri-driver.
# Needs what `./dev test` installs and builds; run that once first. Prints a Markdown table;
# it is not a test and asserts nothing about speed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelup-target}"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/reelup-dev/venv"
[ -x "$VENV/bin/python" ] && [ -x "$CARGO_TARGET_DIR/debug/reelup-app" ] ||
  { echo "ui.sh: run ./dev test once first (it installs the tools and builds the app)" >&2; exit 1; }
(cd ui && npm run --silent build >/dev/null)
# The same build as ./dev test (features included), so the warm build stays warm.
cargo build --quiet --workspace --all-targets
PATH="$HOME/.cargo/bin:$PATH" dbus-run-session --config-file=tests/app/session-bus.conf -- "$VENV/bin/python" -m pytest \
  tests/app/bench_queue_ui.py -q -s -p no:cacheprovider -o faulthandler_timeout=300 2>/dev/null |
  grep -v '^\.\?$\|passed in'
