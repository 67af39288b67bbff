#!/usr/bin/env python3
"""Watch-folder latency, end to end: from a file's last write to its upload starting.

Runs `reelup-server --local` and `reelup watch` (release builds, the real processes), writes
a video into the watched folder in a few writes, and times from the last write to the
moment `reelup watch` reports the upload started ("uploading ..." on stderr) and finished.
The stability window is the default 3 s, so the target is at most 4 s to the start.

    cargo build --release -p reelup-server -p reelup-cli && python3 bench/watch.py [SAMPLES]

Prints a table; it is not a test and asserts nothing. The idle-CPU figures come from
`cargo run --release -p reelup-core --example watch_bench`.
"""
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "reelup-target")) / "release"
SAMPLES = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="reelup-watch-bench-"))
    inbox = work / "inbox"
    inbox.mkdir()
    server = subprocess.Popen(
        [TARGET / "reelup-server", "--local", "--listen", "127.0.0.1:0", "--data-dir", work / "server"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "REELUP_LOG": "warn,s3s=off"},
    )
    ready = json.loads(server.stdout.readline())
    env = {
        **os.environ,
        "REELUP_CONFIG_DIR": str(work / "config"),
        "REELUP_DATA_DIR": str(work / "data"),
        "REELUP_TOKEN": ready["token"],
    }
    subprocess.run(
        [TARGET / "reelup", "profile", "add", "bench", "--endpoint", ready["endpoint"], "--cdn", ready["cdn"]],
        env=env,
        check=True,
        capture_output=True,
    )
    watch = subprocess.Popen(
        [TARGET / "reelup", "watch", str(inbox)], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    lines: "queue.Queue[tuple[float, str]]" = queue.Queue()

    def pump(stream):
        for line in stream:
            lines.put((time.monotonic(), line.strip()))

    threading.Thread(target=pump, args=(watch.stderr,), daemon=True).start()
    threading.Thread(target=pump, args=(watch.stdout,), daemon=True).start()

    def wait_for(prefix: str, name: str, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while True:
            at, line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line.startswith(prefix) and name in line:
                return at

    wait_for("watching", str(inbox))
    starts, dones = [], []
    try:
        for i in range(SAMPLES):
            name = f"take-{i}.mp4"
            with open(inbox / name, "wb") as f:
                for _ in range(4):  # 4 MiB in four writes, as a recorder flushes
                    f.write(os.urandom(1 << 20))
                    f.flush()
                    time.sleep(0.2)
            last_write = time.monotonic()
            started = wait_for("uploading", name)
            done = wait_for(str(inbox / name), name)
            starts.append(started - last_write)
            dones.append(done - last_write)
    finally:
        watch.terminate()
        watch.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)

    def row(label, xs):
        return f"| {label} | {min(xs):.2f} s | {statistics.median(xs):.2f} s | {max(xs):.2f} s |"

    print(f"reelup watch, stability window 3 s, {SAMPLES} files of 4 MiB (release build, loopback)\n")
    print("| from the last write to | min | median | max |")
    print("|---|---|---|---|")
    print(row("upload started", starts))
    print(row("upload done (streaming URL printed)", dones))


if __name__ == "__main__":
    main()
