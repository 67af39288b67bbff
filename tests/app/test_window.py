"""The window is not where uploads live: closed, it goes to the tray and uploads go on; a
second launch hands its files (a folder too) to the running app and brings the window back."""
import json
import os
import subprocess
import time

from selenium.webdriver.support.ui import WebDriverWait

from conftest import bin_path
from reelup_ui import (
    close_window,
    drop_files,
    fetch_sha256,
    queue_rows,
    sha256,
    wait_connected,
    wait_history,
    window_visible,
)

MIB = 1024 * 1024


def queue_by_cli(env) -> dict[str, dict]:
    """The queue as the CLI reads it from the same store: items by file name."""
    out = subprocess.run(
        [bin_path("reelup"), "queue", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    items = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    return {os.path.basename(i["path"]): i for i in items}


def test_uploads_go_on_with_the_window_closed_and_a_second_launch_hands_over_files(app, app_env, tmp_path):
    driver = app
    wait_connected(driver)
    # At the tests' 2 MB/s, about 5 s: still running when the window closes.
    first = tmp_path / "closed window.mp4"
    data = os.urandom(10 * MIB + 3)
    first.write_bytes(data)
    drop_files(app_env, first, driver=driver)
    WebDriverWait(driver, 20).until(
        lambda d: (r := queue_rows(d).get(first.name)) and r["state"] == "uploading",
        "the dropped file did not start",
    )

    close_window(app_env)
    WebDriverWait(driver, 10, poll_frequency=0.1).until(
        lambda _: not window_visible(app_env), "the window did not close to the tray"
    )
    states = []
    deadline = time.monotonic() + 60
    while (item := queue_by_cli(app_env).get(first.name)) is None or item["state"] != "done":
        states.append(item and item["state"])
        assert time.monotonic() < deadline, f"the upload did not finish with the window closed: {states}"
        assert not window_visible(app_env), "the window came back by itself"
        time.sleep(0.25)
    # It was still going when the window closed, and it went on in the app, not a new one.
    assert "uploading" in states, states

    # A second launch with a folder: it hands the folder's video over and exits at once.
    folder = tmp_path / "day 2"
    folder.mkdir()
    second = folder / "second launch.mov"
    second_data = os.urandom(2 * MIB + 11)
    second.write_bytes(second_data)
    (folder / "notes.txt").write_text("not a video")
    started = time.monotonic()
    launch = subprocess.run([bin_path("reelup-app"), str(folder)], env=app_env, capture_output=True, timeout=60)
    assert launch.returncode == 0, launch.stderr.decode(errors="replace")[-2000:]
    assert time.monotonic() - started < 30
    WebDriverWait(driver, 20, poll_frequency=0.1).until(
        lambda _: window_visible(app_env), "the second launch did not bring the window back"
    )

    done = wait_history(driver, [first.name, second.name])
    assert fetch_sha256(done[first.name]["url"]) == sha256(data)
    assert fetch_sha256(done[second.name]["url"]) == sha256(second_data)
    assert "notes.txt" not in queue_by_cli(app_env), "the folder's non-video was queued"
