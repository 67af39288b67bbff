"""Plays Reelup links in a real browser (Debian's chromium, headless, through chromedriver)
and reports what it took: time to the first decoded frame, the bytes the browser received
before it, and the byte ranges it asked for. Shared by tests/browser (assertions) and
bench/playback.py (figures).

What the browser did is read from Chrome's own network log (DevTools `Network.*` events),
not from a proxy: nothing sits between the browser and the CDN route, so a shaped link is
measured as a viewer would see it.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "reelup-target"))


def bin_path(name: str) -> Path:
    return TARGET / "debug" / name


# --- videos ---------------------------------------------------------------------------


def make_video(path: Path, seconds: int, size: str = "640x360", bitrate: str = "3M",
               faststart: bool = False) -> Path:
    """An H.264 + AAC MP4 made by ffmpeg: `moov` at the end (what OBS, QuickTime and most
    phones write) unless `faststart`."""
    cmd = ["ffmpeg", "-v", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=duration={seconds}:size={size}:rate=25",
           "-f", "lavfi", "-i", f"sine=duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-b:v", bitrate, "-pix_fmt", "yuv420p",
           "-c:a", "aac"]
    if faststart:
        cmd += ["-movflags", "+faststart"]
    subprocess.run(cmd + [str(path)], check=True)
    return path


def top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4's top-level boxes, in order (enough to see where `moov` is)."""
    out, at = [], 0
    end = path.stat().st_size
    with open(path, "rb") as f:
        while at + 8 <= end:
            f.seek(at)
            head = f.read(16)
            size = int.from_bytes(head[:4], "big")
            kind = head[4:8].decode("latin-1")
            if size == 1:
                size = int.from_bytes(head[8:16], "big")
            elif size == 0:
                size = end - at
            if size < 8:
                raise ValueError(f"box {kind!r} at {at} has size {size}")
            out.append(kind)
            at += size
    return out


def framemd5(path_or_url: str) -> list[str]:
    """ffmpeg's per-packet MD5s (stream copy): equal lists mean the same media, whatever
    the container's layout."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path_or_url, "-map", "0", "-c", "copy", "-f", "framemd5", "-"],
        check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if not line.startswith("#")]


# --- the local stack and the CLI ------------------------------------------------------


@dataclass
class Stack:
    """`reelup-server --local` and a CLI profile pointing at it."""
    proc: subprocess.Popen
    ready: dict
    home: Path
    netns: str | None = None

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(REELUP_CONFIG_DIR=str(self.home / "config"), REELUP_DATA_DIR=str(self.home / "data"),
                   REELUP_TOKEN=self.ready["token"], REELUP_PROFILE="local")
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # In a namespace, the CLI runs there too: the store it sends to listens on that
        # namespace's loopback.
        ns = ["ip", "netns", "exec", self.netns] if self.netns else []
        return subprocess.run([*ns, str(bin_path("reelup")), *args], env=self.env, capture_output=True,
                              text=True, check=check, timeout=600)

    def upload(self, path: Path, *flags: str) -> str:
        """Uploads one file with the CLI; returns its streaming URL."""
        self.cli("upload", *flags, str(path))
        items = self.queue()
        mine = [i for i in items if Path(i["path"]) == path.resolve() and i.get("url")]
        assert mine, f"{path} has no URL in the queue: {items}"
        return max(mine, key=lambda i: i["id"])["url"]

    def queue(self) -> list[dict]:
        """`reelup queue --json`: one JSON object per line."""
        return [json.loads(line) for line in self.cli("queue", "--json").stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


def start_stack(listen: str = "127.0.0.1:0", netns: str | None = None, extra: tuple = ()) -> Stack:
    home = Path(tempfile.mkdtemp(prefix="reelup-browser-"))
    cmd = [str(bin_path("reelup-server")), "--local", "--listen", listen,
           "--data-dir", str(home / "store"), *extra]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise RuntimeError(f"reelup-server did not start: {(home / 'server.log').read_text()}")
    ready = json.loads(line)
    # A stack listening on every address of its namespace is reached from inside it on
    # loopback (the CLI allows plain http only there).
    for k in ("endpoint", "cdn"):
        ready[k] = ready[k].replace("//0.0.0.0:", "//127.0.0.1:")
    stack = Stack(proc, ready, home, netns)
    try:
        stack.cli("profile", "add", "local", "--endpoint", ready["endpoint"], "--cdn", ready["cdn"])
    except BaseException:
        stack.stop()  # a server nobody will stop otherwise
        raise
    return stack


# --- a page to play in, and the browser ----------------------------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *_):
        pass


class Site:
    """The web page a creator embeds the link in: an empty page on its own origin (media
    elements refuse `file://` and `about:blank` pages' loads of http media)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="reelup-site-"))
        (self.dir / "index.html").write_text("<!doctype html><title>embed</title><body></body>")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(self.dir)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/index.html"

    def close(self):
        self.server.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Playback:
    """What one play of a link took."""
    first_frame_ms: float | None
    error: str | None
    # Bytes the browser received for the video before its first frame was shown.
    bytes_before_first_frame: int = 0
    # The Range header of every request the browser made before the first frame.
    ranges: list = field(default_factory=list)
    # The HTTP status of each of those requests (None when it failed before an answer).
    statuses: list = field(default_factory=list)
    width: int = 0


_PLAY = """
const [url, done] = arguments;
const v = document.createElement('video');
v.muted = true; v.preload = 'auto';
const t0 = performance.now();
const wallStart = performance.timeOrigin + t0;
v.onerror = () => done({error: (v.error && v.error.message) || 'error ' + (v.error && v.error.code)});
v.requestVideoFrameCallback(() => {
  const at = performance.now();
  done({firstFrameMs: at - t0, firstFrameWall: performance.timeOrigin + at, wallStart, width: v.videoWidth});
  v.pause(); v.removeAttribute('src'); v.load();
});
document.body.appendChild(v);
v.src = url;
v.play().catch(() => {});
"""


class Browser:
    def __init__(self, timeout_s: float = 120):
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--autoplay-policy=no-user-gesture-required", "--no-proxy-server",
                  # Each play starts cold: no cached ranges from an earlier play.
                  "--disk-cache-size=1", "--media-cache-size=1"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.driver = webdriver.Chrome(service=Service(driver), options=opts)
        self.driver.set_script_timeout(timeout_s)
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})

    def play(self, page: str, url: str) -> Playback:
        self.driver.get(page)
        self.driver.get_log("performance")  # drop what the page load logged
        got = self.driver.execute_async_script(_PLAY, url)
        events = [json.loads(e["message"])["message"] for e in self.driver.get_log("performance")]
        return _summarise(got, events, url)

    def close(self):
        self.driver.quit()


def _summarise(got: dict, events: list, url: str) -> Playback:
    # DevTools stamps events on a monotonic clock and gives the wall time only when a request
    # starts: that pair maps the page's first-frame instant onto the event clock.
    starts = [e["params"] for e in events if e["method"] == "Network.requestWillBeSent"
              and e["params"]["request"]["url"].split("?")[0] == url.split("?")[0]]
    ids = {s["requestId"] for s in starts}
    cutoff = None
    if got.get("firstFrameWall") and starts:
        s = starts[0]
        cutoff = s["timestamp"] + (got["firstFrameWall"] / 1000 - s["wallTime"])
    before = [s for s in starts if cutoff is None or s["timestamp"] <= cutoff]
    received = sum(e["params"]["encodedDataLength"] or e["params"]["dataLength"]
                   for e in events if e["method"] == "Network.dataReceived"
                   and e["params"]["requestId"] in ids
                   and (cutoff is None or e["params"]["timestamp"] <= cutoff))
    # A refused media load has no responseReceived; its status is in the raw headers' event.
    status = {e["params"]["requestId"]: e["params"]["statusCode"]
              for e in events if e["method"] == "Network.responseReceivedExtraInfo"}
    status.update({e["params"]["requestId"]: e["params"]["response"]["status"]
                   for e in events if e["method"] == "Network.responseReceived"})
    return Playback(
        first_frame_ms=got.get("firstFrameMs"),
        error=got.get("error"),
        bytes_before_first_frame=received,
        ranges=[s["request"]["headers"].get("Range") for s in before],
        statuses=[status.get(s["requestId"]) for s in before],
        width=got.get("width", 0),
    )


def range_start(header: str | None) -> int:
    """Where a `bytes=N-[M]` range starts (0 for no Range header)."""
    if not header:
        return 0
    return int(header.split("=", 1)[1].split("-", 1)[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False
