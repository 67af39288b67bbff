"""The window is not where uploads live: closed, it goes to the tray and uploads go on; a
second launch hands its files (a folder too) to the running app and brings the window back."""
import json
import os
from pathlib import Path
import subprocess
import time

from selenium.webdriver.support.ui import WebDriverWait

from conftest import bin_path, stop, wait_no_other_app
from reelup_ui import (
    click,
    close_window,
    drop_files,
    fetch_sha256,
    queue_rows,
    sha256,
    show_tab,
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

    close_window(app_env, lambda: not window_visible(app_env), "the window did not close to the tray")
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


def geometry(env, wid: str) -> dict[str, int]:
    out = subprocess.run(
        ["xdotool", "getwindowgeometry", "--shell", wid], env=env, capture_output=True, text=True, check=True
    ).stdout
    return {k: int(v) for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line) if k != "SCREEN"}


def start_app(env, log, *args: str) -> subprocess.Popen:
    """The app as a user starts it (no WebDriver), once no other Reelup runs on the bus;
    returns once its page is in. Only then is it up: a close or a resize sent earlier may
    reach GTK before the app listens for it, which no user can do."""
    wait_no_other_app(env)
    log_path = Path(log.name)
    log.flush()
    loaded_before = log_path.read_bytes().count(b"page loaded")
    proc = subprocess.Popen([bin_path("reelup-app"), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while log_path.read_bytes().count(b"page loaded") == loaded_before:
        assert proc.poll() is None, f"the app exited with {proc.returncode}"
        assert time.monotonic() < deadline, "the app did not come up"
        time.sleep(0.2)
    return proc


def launch_alone(env, log):
    """`start_app`, then its window once it shows; returns the process and the window."""
    proc = start_app(env, log)
    deadline = time.monotonic() + 60
    while True:
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--pid", str(proc.pid), "--name", "^Reelup$"],
            env=env, capture_output=True, text=True,
        )
        if found.returncode == 0 and found.stdout.split():
            return proc, found.stdout.split()[0]
        assert proc.poll() is None, f"the app exited with {proc.returncode}"
        assert time.monotonic() < deadline, "the app's window did not appear"
        time.sleep(0.2)


def test_window_size_and_place_are_remembered_and_sigterm_quits_cleanly(app_env, app_log):
    with open(app_log, "ab") as log:
        first, wid = launch_alone(app_env, log)
        try:
            subprocess.run(["xdotool", "windowsize", wid, "900", "640"], env=app_env, check=True)
            subprocess.run(["xdotool", "windowmove", wid, "123", "77"], env=app_env, check=True)
            want = {"X": 123, "Y": 77, "WIDTH": 900, "HEIGHT": 640}
            deadline = time.monotonic() + 10
            while (got := geometry(app_env, wid)) != {**got, **want}:
                assert time.monotonic() < deadline, f"the window did not take its new size and place: {got}"
                time.sleep(0.1)
            time.sleep(0.5)  # the app hears of the move and resize
            # Quit with the window closed to the tray: the next start still shows it.
            close_window(app_env, lambda: not window_visible(app_env), "the window did not close to the tray")
            first.terminate()
            # A clean quit, as from the tray's Quit: not killed by the signal.
            assert first.wait(timeout=20) == 0
        finally:
            stop(first)

        second, wid = launch_alone(app_env, log)
        try:
            # Restored as the window comes up (the X server applies it a moment later).
            deadline = time.monotonic() + 10
            while (got := geometry(app_env, wid)) != {**got, **want}:
                assert time.monotonic() < deadline, f"the size and place were not restored: {got}"
                time.sleep(0.1)
            second.terminate()
            assert second.wait(timeout=20) == 0
        finally:
            stop(second)


def test_start_at_login_follows_settings(app, app_dirs):
    driver = app
    wait_connected(driver)
    show_tab(driver, "settings")
    config = app_dirs["config"] / "config.toml"
    # Where the autostart plugin (auto-launch) puts login items on Linux: ~/.config/autostart.
    entry = app_dirs["home"] / ".config" / "autostart"

    def desktop_files():
        return sorted(entry.glob("*.desktop")) if entry.is_dir() else []

    assert desktop_files() == []
    click(driver, "[data-testid=opt-start-at-login]")
    WebDriverWait(driver, 20).until(lambda _: desktop_files(), "no login item was written")
    [item] = desktop_files()
    assert f"Exec={bin_path('reelup-app')} --in-tray" in item.read_text(), item.read_text()
    WebDriverWait(driver, 10).until(lambda _: "start-at-login = true" in config.read_text(), config.read_text())

    click(driver, "[data-testid=opt-start-at-login]")
    WebDriverWait(driver, 20).until(lambda _: not desktop_files(), "the login item stayed")
    WebDriverWait(driver, 10).until(lambda _: "start-at-login = false" in config.read_text(), config.read_text())


def test_without_close_to_tray_closing_the_window_quits(app_env, app_dirs, app_log):
    config = app_dirs["config"] / "config.toml"
    before = config.read_text()
    # The [app] table is there if an earlier test changed an app option through Settings.
    if "close-to-tray = true" in before:
        config.write_text(before.replace("close-to-tray = true", "close-to-tray = false"))
    else:
        config.write_text(before + "\n[app]\nclose-to-tray = false\n")
    try:
        with open(app_log, "ab") as log:
            alone, _wid = launch_alone(app_env, log)
            try:
                close_window(app_env, lambda: alone.poll() is not None, "closing the window did not quit the app")
                assert alone.returncode == 0
            finally:
                stop(alone)
    finally:
        config.write_text(before)


def test_the_login_item_starts_in_the_tray_and_a_launch_opens_the_window(app_env, app_log):
    """What the login item runs (`reelup-app --in-tray`): the app is up, with no window;
    the user's own launch afterwards opens it."""
    with open(app_log, "ab") as log:
        tray = start_app(app_env, log, "--in-tray")
        try:
            time.sleep(1)
            assert not window_visible(app_env), "started from the login item, the window showed"
            assert tray.poll() is None

            # The user starts Reelup: the running one opens its window, the new one exits.
            launch = subprocess.run([bin_path("reelup-app")], env=app_env, capture_output=True, timeout=60)
            assert launch.returncode == 0, launch.stderr.decode(errors="replace")[-2000:]
            deadline = time.monotonic() + 20
            while not window_visible(app_env):
                assert time.monotonic() < deadline, "a launch did not open the window"
                time.sleep(0.1)
            tray.terminate()
            assert tray.wait(timeout=20) == 0
        finally:
            stop(tray)
