#!/usr/bin/env python3
"""Playback benchmark: time to first frame, and the bytes a viewer's browser fetches before
it, for one video uploaded by Reelup as it was recorded (`moov` after `mdat`) and re-laid as
faststart, played side by side on a link shaped to a creator's viewer's speed.

    sudo bench/playback.py                      ~200 MB video, 20 Mbit/s, 3 plays each
    MBIT=50 SECONDS=30 RUNS=5 bench/playback.py

The local stack (reelup-server --local) runs in its own network namespace; `tc ... tbf`
shapes what it sends to the browser (in the host namespace) to MBIT. The CLI uploads from
inside that namespace, unshaped. Debian's chromium plays each link headless, with its cache
off, from a page on its own origin; what it fetched is read from its DevTools network log.
Needs root (network namespaces), ffmpeg, chromium + chromedriver, and the debug binaries
(`./dev test` or `cargo build -p reelup-cli -p reelup-server`). Prints a Markdown table of
medians; it asserts nothing.
"""
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
import playback  # noqa: E402

MBIT = int(os.environ.get("MBIT", "20"))
SECONDS = int(os.environ.get("SECONDS", "64"))
VIDEO_MBIT = int(os.environ.get("VIDEO_MBIT", "25"))  # 64 s at 25 Mbit/s: about 200 MB
RUNS = int(os.environ.get("RUNS", "3"))
NS = f"reelup-bench-{os.getpid()}"
HOST_IF, NS_IF = f"rb{os.getpid() % 100000}h", f"rb{os.getpid() % 100000}n"
HOST_IP, NS_IP = "10.231.7.1", "10.231.7.2"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True)


def make_link() -> None:
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")


def shape(mbit: int) -> None:
    # What the server sends to the viewer: a token bucket at the link's rate, a queue of at
    # most 50 ms (a home router's buffer, not an endless one).
    sh("ip", "netns", "exec", NS, "tc", "qdisc", "replace", "dev", NS_IF, "root", "tbf",
       "rate", f"{mbit}mbit", "burst", "32kb", "latency", "50ms")


def remove_link() -> None:
    subprocess.run(["ip", "link", "del", HOST_IF], capture_output=True)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)


class Relay:
    """A TCP relay on the host's loopback to the namespace, in a thread of its own."""

    def __init__(self, listen: tuple, to: tuple):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def serve(reader, writer):
            try:
                up_reader, up_writer = await asyncio.open_connection(*to)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        async def start():
            self.server = await asyncio.start_server(serve, *listen)
            ready.set()

        def run():
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def make_video(path: Path) -> Path:
    # Constant bit rate with filler, so the file has the size a real recording of this
    # length would (the test pattern alone compresses to almost nothing).
    rate = f"{VIDEO_MBIT}M"
    subprocess.run(["ffmpeg", "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=duration={SECONDS}:size=1280x720:rate=25",
                    "-f", "lavfi", "-i", f"sine=duration={SECONDS}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate,
                    "-x264-params", "nal-hrd=cbr:force-cfr=1", "-c:a", "aac", str(path)],
                   check=True)
    return path


def main() -> int:
    if os.geteuid() != 0:
        print("playback.py: network namespaces need root; run it with sudo", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="reelup-playback-"))
    video = make_video(work / "recording.mp4")
    size = video.stat().st_size
    boxes = playback.top_level_boxes(video)
    print(f"video: {size / 1e6:.0f} MB, {SECONDS} s, boxes {boxes}", file=sys.stderr)
    make_link()
    stack = site = browser = relay = None
    try:
        # Every address of the namespace: the CLI reaches it on the namespace's loopback; the
        # browser on the host's 127.0.0.1:7300, relayed over the shaped link (the local stack
        # answers only to loopback host names, against DNS rebinding).
        stack = playback.start_stack(listen="0.0.0.0:7300", netns=NS)
        relay = Relay(("127.0.0.1", 7300), (NS_IP, 7300))
        urls = {
            "as recorded (moov last)": stack.upload(video, "--faststart=off"),
            "faststart (re-laid by Reelup)": stack.upload(video, "--faststart=always"),
        }
        shape(MBIT)
        site, browser = playback.Site(), playback.Browser(timeout_s=600)
        rows = []
        results = {name: [] for name in urls}
        for run in range(RUNS):
            # Alternate the order so neither layout always plays on a warmer machine.
            order = list(urls.items()) if run % 2 == 0 else list(reversed(urls.items()))
            for name, url in order:
                got = browser.play(site.url, url)
                if got.error:
                    print(f"{name}: play failed: {got.error}", file=sys.stderr)
                    continue
                results[name].append(got)
        for name, plays in results.items():
            if not plays:
                rows.append(f"| {name} | failed | | | |")
                continue
            ttff = statistics.median(p.first_frame_ms for p in plays) / 1000
            fetched = statistics.median(p.bytes_before_first_frame for p in plays)
            requests = statistics.median(len(p.ranges) for p in plays)
            rows.append(f"| {name} | {ttff:.2f} s | {fetched / 1e6:.2f} MB | {requests:.0f} | {len(plays)} |")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        load = open("/proc/loadavg").read().split()[0]
        print(f"\n{size / 1e6:.0f} MB H.264/AAC video, link shaped to {MBIT} Mbit/s (tbf), "
              f"chromium {browser.driver.capabilities.get('browserVersion')}, "
              f"{os.cpu_count()} cores, load {load}, commit {commit}, median of {RUNS}\n")
        print("| layout | time to first frame | bytes fetched before it | requests before it | plays |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))
        return 0
    finally:
        if browser:
            browser.close()
        if site:
            site.close()
        if relay:
            relay.close()
        if stack:
            stack.stop()
        remove_link()
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    sys.exit(main())
