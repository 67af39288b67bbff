#!/usr/bin/env python3
"""`./dev run` stops what it started, however it is stopped.

Runs `./dev run`'s launch with stand-ins for reelup-server, reelup and reelup-app
(REELUP_BIN_DIR; cargo, npm, apt-get, sudo and dpkg-query fail if anything calls them), stops
it each way a person or a tool does, and checks that no stand-in is left running and the
ready file is gone:

- the app quits by itself (its window closed, or Quit in the tray);
- SIGTERM to the script alone (`kill PID`, a service manager);
- SIGHUP to the script (the terminal closed);
- SIGINT to the script's process group (Ctrl-C in the terminal it runs in);
- `timeout 2 ./dev run` (SIGTERM to the script, then to timeout's whole process group), and
  `timeout --foreground 2 ./dev run` (to the script alone);
- SIGKILL to the script (a harness's hard timeout), which no trap sees.

Plain Python 3, no packages: `python3 tests/scripts/test_dev_run.py` (run by `./dev test`).
Each run takes its own temporary folder, so two can run at once.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
READY = {"endpoint": "http://127.0.0.1:9", "cdn": "http://127.0.0.1:9/cdn", "token": "rlp_standin"}

# Each stand-in records its pid (kept by exec), then sleeps as the real one runs.
SERVER = f"""#!/bin/sh
echo $$ > "$(dirname "$0")/pids/server"
echo "$*" > "$(dirname "$0")/server-args"
echo '{json.dumps(READY)}'
exec sleep 300
"""
CLI = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/cli-calls"
if [ "$1" = login ]; then cat > /dev/null; fi
exit 0
"""
# STANDIN_APP_QUITS_AFTER: the app quits by itself after that many seconds (the window
# closed); else it runs until it is stopped.
APP = """#!/bin/sh
echo $$ > "$(dirname "$0")/pids/app"
if [ -n "${STANDIN_APP_QUITS_AFTER:-}" ]; then sleep "$STANDIN_APP_QUITS_AFTER"; exit 0; fi
exec sleep 300
"""
FORBIDDEN = """#!/bin/sh
echo "$(basename "$0") $*" >> "$(dirname "$0")/../forbidden-calls"
exit 1
"""


def running(pid: int) -> bool:
    """True while `pid` runs (a zombie, reaped any moment, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class DevRunStops(unittest.TestCase):
    def setUp(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="dev-run-"))
        self.bin = self.dir / "bin"
        self.stubs = self.dir / "stubs"
        self.tmp = self.dir / "tmp"
        for d in (self.bin / "pids", self.stubs, self.tmp):
            d.mkdir(parents=True)
        for name, text in (("reelup-server", SERVER), ("reelup", CLI), ("reelup-app", APP)):
            (self.bin / name).write_text(text)
            (self.bin / name).chmod(0o755)
        for name in ("cargo", "npm", "apt-get", "sudo", "dpkg-query"):
            (self.stubs / name).write_text(FORBIDDEN)
            (self.stubs / name).chmod(0o755)
        self.proc = None

    def tearDown(self):
        # Whatever a failed case left: only the stand-ins this case started, by their pids.
        for pid in self.pids().values():
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc:
            self.err.close()
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)

    def pids(self) -> dict:
        found = {}
        for name in ("server", "app"):
            f = self.bin / "pids" / name
            if f.exists() and f.read_text().strip():
                found[name] = int(f.read_text())
        return found

    def launch(self, prefix=(), **env):
        def default_signals():
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)

        self.err = open(self.dir / "stderr", "wb")
        self.proc = subprocess.Popen(
            [*prefix, str(ROOT / "dev"), "run", "--require-signed-links"],
            cwd=ROOT,
            env={
                **os.environ,
                "PATH": f"{self.stubs}:{os.environ['PATH']}",
                "REELUP_BIN_DIR": str(self.bin),
                "TMPDIR": str(self.tmp),
                "XDG_CACHE_HOME": str(self.dir / "cache"),
                **env,
            },
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: a stand-in left running would hold a pipe open.
            stderr=self.err,
            # Its own process group and session, as a job in a terminal has: Ctrl-C is
            # SIGINT to that whole group.
            start_new_session=True,
            # As an interactive shell starts a job: SIGINT and SIGHUP not ignored, even when
            # this test runs in the background or under nohup (which ignore them, and bash
            # cannot trap what it was started ignoring).
            preexec_fn=default_signals,
        )
        # Both running before anything is stopped.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if len(self.pids()) == 2 and all(running(p) for p in self.pids().values()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.fail(f"the stand-ins did not both start: {self.pids()}; stderr:\n{self.stderr()}")

    def stderr(self) -> str:
        return (self.dir / "stderr").read_text(errors="replace")

    def assert_all_stopped(self, expect_status=None):
        """./dev run ended, with `expect_status` (negative: by that signal, as Popen says)."""
        try:
            status = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("./dev run did not end")
        # Stand-ins in their own sessions are reaped by init once ./dev is gone.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(running(p) for p in self.pids().values()):
            time.sleep(0.05)
        left = {name: pid for name, pid in self.pids().items() if running(pid)}
        self.assertEqual(left, {}, f"left running; ./dev run said:\n{self.stderr()}")
        self.assertEqual(list(self.tmp.iterdir()), [], "the ready file was left behind")
        forbidden = self.dir / "forbidden-calls"
        self.assertFalse(forbidden.exists(), forbidden.exists() and forbidden.read_text())
        # The launch itself: arguments reach the server, the profile gets the ready line.
        self.assertEqual((self.bin / "server-args").read_text().split(),
                         ["--local", "--require-signed-links"])
        calls = (self.bin / "cli-calls").read_text().splitlines()
        self.assertIn(f"profile add local --endpoint {READY['endpoint']} --cdn {READY['cdn']}", calls)
        self.assertIn("login --profile local", calls)
        if expect_status is not None:
            self.assertEqual(status, expect_status, self.stderr())

    def test_the_app_quitting_stops_the_server(self):
        self.launch(STANDIN_APP_QUITS_AFTER="1")
        self.assert_all_stopped(expect_status=0)

    def test_sigterm_to_the_script(self):
        self.launch()
        os.kill(self.proc.pid, signal.SIGTERM)
        self.assert_all_stopped(expect_status=-signal.SIGTERM)

    def test_sighup_to_the_script(self):
        self.launch()
        os.kill(self.proc.pid, signal.SIGHUP)
        self.assert_all_stopped(expect_status=-signal.SIGHUP)

    def test_ctrl_c_in_its_terminal(self):
        self.launch()
        os.killpg(self.proc.pid, signal.SIGINT)
        self.assert_all_stopped(expect_status=-signal.SIGINT)

    def test_timeout(self):
        self.launch(prefix=("timeout", "2"))
        self.assert_all_stopped(expect_status=124)

    def test_timeout_foreground(self):
        # --foreground: SIGTERM to the script alone, as a plain `kill` sends.
        self.launch(prefix=("timeout", "--foreground", "2"))
        self.assert_all_stopped(expect_status=124)

    def test_sigkill_to_the_script(self):
        self.launch()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.assert_all_stopped()


if __name__ == "__main__":
    unittest.main()
