"""Add videos with the system's file picker, in the real app: the button opens GTK's file
chooser, a video is chosen in it as a person would (typing its path), and it is queued and
uploaded like a drop."""
import os
import subprocess
import time
import uuid

from conftest import invoke
from reelup_ui import click, fetch_sha256, sha256, wait_connected, wait_history, xdotool


def dialog_windows(env, title: str) -> list[str]:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", title], env=env, capture_output=True, text=True
    )
    return found.stdout.split()


def choose_in_file_chooser(env, title: str, path) -> None:
    """Types `path` into the open GTK file chooser titled `title` and accepts it, as a
    person would: Ctrl+L opens the location field, the path is typed, Return picks it. The
    field takes a moment to open and there is no event to wait for, so the whole entry is
    made again (replacing what is there) while the chooser is still open."""
    wid = xdotool(env, "search", "--sync", "--onlyvisible", "--name", title).split()[0]
    for attempt in range(10):
        # No window manager under Xvfb: focus it directly, then type as a keyboard does.
        xdotool(env, "windowfocus", "--sync", wid)
        xdotool(env, "key", "ctrl+l")
        time.sleep(0.3 * (attempt + 1))
        xdotool(env, "key", "ctrl+a")
        xdotool(env, "type", "--delay", "10", str(path))
        xdotool(env, "key", "Return")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if wid not in dialog_windows(env, title):
                return
            time.sleep(0.1)
    raise AssertionError("the file chooser did not take the path")


def test_add_videos_opens_the_picker_and_queues_what_is_chosen(app, app_env, tmp_path):
    driver = app
    wait_connected(driver)
    video = tmp_path / f"picked {uuid.uuid4().hex[:6]}.mp4"
    data = os.urandom(300_000)
    video.write_bytes(data)
    click(driver, "[data-testid=add-videos]")
    choose_in_file_chooser(app_env, "Add videos", video)
    row = wait_history(driver, [video.name], timeout=120)[video.name]
    assert fetch_sha256(row["url"]) == sha256(data)
    assert any(i["name"] == video.name for i in invoke(driver, "list_uploads"))
