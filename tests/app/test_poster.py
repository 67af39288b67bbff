"""Poster frames in the real app: a real H.264 file (made by ffmpeg) dropped on the window
is drawn by the webview's own media stack (WebKitGTK + GStreamer) from the app's
`reelup-media:` scheme, uploaded beside the video, and shown in History."""
import subprocess
import urllib.request
import uuid

from selenium.webdriver.support.ui import WebDriverWait

from conftest import ARTIFACTS, invoke
from reelup_ui import attr, drop_files, show_tab, wait_connected, wait_history


def test_a_dropped_h264_video_gets_a_poster_in_history(app, app_env, tmp_path):
    driver = app
    wait_connected(driver)
    video = tmp_path / f"poster {uuid.uuid4().hex[:6]}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         "testsrc2=size=1280x720:rate=25:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         str(video)],
        check=True,
    )
    drop_files(app_env, video, driver=driver)
    row = wait_history(driver, [video.name])[video.name]
    thumb = f'[data-testid=history-row][data-id="{row["id"]}"] [data-testid=poster]'
    src = WebDriverWait(driver, 60, poll_frequency=0.25).until(
        lambda d: attr(d, thumb, "src"), "no poster appeared in History"
    )
    item = next(i for i in invoke(driver, "list_uploads") if str(i["id"]) == row["id"])
    assert item["posterUrl"] == src
    # Beside the video: the same user prefix on the same CDN.
    assert src.rsplit("/", 1)[0] == row["url"].rsplit("/", 1)[0], (src, row["url"])
    with urllib.request.urlopen(src, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "image/jpeg"
        jpeg = resp.read()
    assert jpeg[:3] == b"\xff\xd8\xff"
    poster = tmp_path / "poster.jpg"
    poster.write_bytes(jpeg)
    size = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", str(poster)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    assert size == "640,360", size
    # The image has loaded in the row (not a broken image); lazy, so once History shows.
    show_tab(driver, "history")
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script(
            "const i = document.querySelector(arguments[0]); return i.complete && i.naturalWidth;", thumb
        ) == 640
    )
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "history-posters.png"))


def make_video(path, codec: str, index_first: bool, seconds: int = 4) -> None:
    """A test pattern with grain at 20 Mbit/s (the grain keeps the encoder at the rate):
    about 10 MB for 4 s at 720p, several of the scheme's 4 MiB answers, made in seconds,
    in the profiles cameras and screen recorders write (H.264 Constrained Baseline to
    High, HEVC Main)."""
    codec_args = {
        "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "20M", "-maxrate", "20M",
                 "-bufsize", "10M"],
        "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-b:v", "20M",
                 "-x265-params", "vbv-maxrate=20000:vbv-bufsize=10000:log-level=error", "-tag:v", "hvc1"],
    }[codec]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=size=1280x720:rate=25:duration={seconds}", "-vf", "noise=alls=20:allf=t",
         *codec_args, "-pix_fmt", "yuv420p",
         *(["-movflags", "+faststart"] if index_first else []), str(path)],
        check=True,
    )


def test_videos_larger_than_one_answer_of_the_scheme_get_posters(app, app_env, tmp_path):
    """The scheme answers at most 4 MiB at a time: a video is fetched in several ranges.
    H.264 and HEVC, with the index (`moov`) first and last, each several answers long."""
    driver = app
    wait_connected(driver)
    tag = uuid.uuid4().hex[:6]
    videos = []
    for codec in ("h264", "hevc"):
        for index_first in (True, False):
            video = tmp_path / f"{codec} {'moov-first' if index_first else 'moov-last'} {tag}.mp4"
            make_video(video, codec, index_first)
            assert video.stat().st_size > 2 * 4 * 1024 * 1024, video.stat().st_size
            videos.append(video)
    drop_files(app_env, *videos, driver=driver)
    rows = wait_history(driver, [v.name for v in videos], timeout=240)
    for video in videos:
        row = rows[video.name]
        thumb = f'[data-testid=history-row][data-id="{row["id"]}"] [data-testid=poster]'
        src = WebDriverWait(driver, 90, poll_frequency=0.25).until(
            lambda d: attr(d, thumb, "src"), f"no poster appeared in History for {video.name}"
        )
        with urllib.request.urlopen(src, timeout=30) as resp:
            jpeg = resp.read()
        assert jpeg[:3] == b"\xff\xd8\xff", video.name
