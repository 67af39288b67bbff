"""A profile whose CDN requires signed links, in the real app: History's Play streams a
freshly signed link (the stored link is unsigned, and the CDN refuses it)."""
import subprocess
import uuid

from selenium.webdriver.support.ui import WebDriverWait

from conftest import bin_path
from reelup_ui import click, show_tab, wait_connected, wait_history


def test_play_streams_a_signed_link_where_links_must_be_signed(signed_profile, app_env, tmp_path, app):
    video = tmp_path / f"signed {uuid.uuid4().hex[:6]}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-movflags", "+faststart", str(video)],
        check=True,
    )
    # Uploaded by the CLI on the same queue: the app shows it in History as it starts.
    upload = subprocess.run(
        [bin_path("reelup"), "upload", "--profile", signed_profile, str(video)],
        env=app_env, capture_output=True, text=True, timeout=120,
    )
    assert upload.returncode == 0, upload.stderr
    driver = app
    wait_connected(driver)
    show_tab(driver, "history")
    row = wait_history(driver, [video.name])[video.name]
    assert "Signature=" not in row["url"], "the queue keeps the plain link"
    click(driver, f'[data-testid=history-row][data-id="{row["id"]}"] [data-testid=history-play]')
    state = WebDriverWait(driver, 30, poll_frequency=0.25).until(
        lambda d: d.execute_script(
            "const v = document.querySelector('[data-testid=preview-video]');"
            "const failed = !document.querySelector('[data-testid=preview-error]').hidden;"
            "return failed ? 'refused' : (v.readyState >= 1 ? v.currentSrc : null);"
        ),
        "the preview neither played nor failed",
    )
    assert state != "refused", "Play used a link the CDN refuses"
    assert "Signature=" in state, state
