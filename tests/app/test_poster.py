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
