#!/usr/bin/env bash
# Desktop app benchmark: the release app's cold start to its first painted window, its idle
# memory, and the package sizes, beside the same UI in a Chromium app window (what an
# Electron build of Reelup would roughly be: Chromium's renderer and browser processes).
#
#   bench/app.sh            3 runs each (builds the packages with ./dev package if missing)
#   RUNS=5 bench/app.sh
#
# Start: from exec until the window is mapped and the page has painted (Reelup logs "page
# loaded" when its webview finishes loading; Chromium is timed to its window being mapped,
# which comes no earlier than its first paint). Memory: the proportional set size (PSS, so
# shared libraries are not counted twice) of the app and every process it started, after
# 10 s idle. Each run gets a fresh config, data and HOME: a cold start of the app, though
# not of the OS's file cache. Prints a Markdown table of medians; it is not a test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelup-target}"
RUNS="${RUNS:-3}"
PACKAGES="${REELUP_PACKAGE_DIR:-$ROOT/packages}"
APP="$CARGO_TARGET_DIR/release/reelup-app"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'app.sh: %s\n' "$*" >&2; exit 1; }

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
command -v Xvfb >/dev/null || die "Xvfb is needed: run ./dev test once (it installs the test tools)"
command -v xdotool >/dev/null || die "xdotool is needed: run ./dev test once"
if ! ls "$PACKAGES"/*.deb >/dev/null 2>&1 || [ ! -x "$APP" ]; then
  say "No packages yet: ./dev package"
  ./dev package
fi
CHROMIUM="$(command -v chromium || true)"
if [ -z "$CHROMIUM" ]; then
  say "Installing Debian's chromium for the peer column"
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
  CHROMIUM="$(command -v chromium)"
fi

exec dbus-run-session --config-file=tests/app/session-bus.conf -- python3 - "$RUNS" "$APP" "$CHROMIUM" "$PACKAGES" <<'PY'
import os, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path

runs, app, chromium, packages = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
ui = Path("ui/dist/index.html").resolve()

def xvfb():
    r, w = os.pipe()
    p = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                         pass_fds=(w,), stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        return p, ":" + f.readline().strip()

def tree(pid):
    kids = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                ppid = int(open(f"/proc/{e}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(e))
    out, todo = [pid], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c); todo.append(c)
    return out

def pss_mib(pids):
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024

def window(env, pid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["xdotool", "search", "--onlyvisible", "--pid", str(pid)], env=env,
                             capture_output=True, text=True).stdout.split()
        if out:
            return True
        time.sleep(0.01)
    return False

def one(kind, display):
    home = Path(tempfile.mkdtemp(prefix="bench-app-"))
    env = {**os.environ, "DISPLAY": display, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "c"),
           "XDG_DATA_HOME": str(home / "d"), "XDG_CACHE_HOME": str(home / "k"), "NO_AT_BRIDGE": "1",
           "LIBGL_ALWAYS_SOFTWARE": "1", "REELUP_CONFIG_DIR": str(home / "rc"), "REELUP_DATA_DIR": str(home / "rd")}
    if kind == "reelup":
        cmd = [app]
    else:
        cmd = [chromium, "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={home / 'chromium'}",
               f"--app=file://{ui}"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not window(env, p.pid):
            return None
        if kind == "reelup":
            # The page's first paint follows its load; the app logs the load.
            log = home / "rd" / "logs"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if log.is_dir() and any("page loaded" in f.read_text(errors="replace") for f in log.glob("*.log")):
                    break
                time.sleep(0.01)
        start = time.monotonic() - t0
        time.sleep(10)
        mem = pss_mib(tree(p.pid))
        return start, mem
    finally:
        for q in reversed(tree(p.pid)):
            try:
                os.kill(q, 15)
            except OSError:
                pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
        shutil.rmtree(home, ignore_errors=True)

server, display = xvfb()
results = {"reelup": [], "chromium": []}
try:
    for i in range(runs):
        for kind in (("reelup", "chromium") if i % 2 == 0 else ("chromium", "reelup")):
            r = one(kind, display)
            print(f"run {i + 1} {kind}: {r}", file=sys.stderr)
            if r:
                results[kind].append(r)
finally:
    server.terminate()

def med(xs, i):
    return statistics.median(x[i] for x in xs) if xs else float("nan")

deb = sorted(packages.glob("*.deb"))
rpm = sorted(packages.glob("*.rpm"))
installed = ""
if deb:
    info = subprocess.run(["dpkg-deb", "-f", deb[-1], "Installed-Size"], capture_output=True, text=True).stdout.strip()
    installed = f"{int(info) / 1024:.1f} MiB" if info.isdigit() else "?"
load = os.getloadavg()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"\nMachine: {os.cpu_count()} cores, load {load[0]:.2f}; commit {commit}; {runs} runs each, medians.\n")
print("| app | cold start to painted window | idle memory (PSS, all processes) |")
print("|---|---|---|")
print(f"| Reelup (Tauri, WebKitGTK) | {med(results['reelup'], 0):.2f} s | {med(results['reelup'], 1):.0f} MiB |")
print(f"| same UI in a Chromium app window | {med(results['chromium'], 0):.2f} s | {med(results['chromium'], 1):.0f} MiB |")
print()
print("| package | size |")
print("|---|---|")
for f in deb + rpm:
    print(f"| {f.name} | {f.stat().st_size / 1024 / 1024:.1f} MiB |")
if installed:
    print(f"| installed (.deb Installed-Size) | {installed} |")
print("| Chromium (Debian package, for scale) | " +
      subprocess.run(["dpkg-query", "-W", "-f=${Installed-Size}", "chromium"], capture_output=True, text=True).stdout.strip() + " KiB installed |")
PY
