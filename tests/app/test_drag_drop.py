"""A video dragged from a file manager into the real app comes back from the CDN intact."""
import os

from selenium.webdriver.support.ui import WebDriverWait

from conftest import PROFILE
from reelup_ui import drop_files, fetch_sha256, history_rows, queue_rows, sha256, text, wait_connected, wait_history


def test_dragged_video_streams_back_identical(app, app_env, tmp_path):
    driver = app
    wait_connected(driver)

    video = tmp_path / "dragged clip.mp4"
    data = os.urandom(3 * 1024 * 1024 + 17)
    video.write_bytes(data)

    drop_files(app_env, video, driver=driver)

    row = wait_history(driver, [video.name])[video.name]
    assert row["state"] == "done"
    assert row["profile"] == PROFILE
    # Done items leave the queue: the file is in History only.
    assert video.name not in queue_rows(driver)
    assert fetch_sha256(row["url"]) == sha256(data)


def test_a_dropped_non_video_gets_a_message_and_no_upload(app, app_env, tmp_path):
    driver = app
    wait_connected(driver)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")

    drop_files(app_env, notes, driver=driver)

    notices = WebDriverWait(driver, 30).until(
        lambda d: (t := d.execute_script(
            "return [...document.querySelectorAll('[data-testid=notice]')].map(n => n.textContent)"
        )) and any("notes.txt" in n for n in t) and t,
        "no notice about the dropped text file",
    )
    assert any("notes.txt: not a video" in n for n in notices), notices
    assert "notes.txt" not in queue_rows(driver)
    assert "notes.txt" not in history_rows(driver)
    assert text(driver, "[data-testid=connection]").startswith("Uploading to")
