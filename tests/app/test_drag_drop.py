"""A video dragged from a file manager into the real app comes back from the CDN intact."""
import hashlib
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ARTIFACTS, stop

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, which has python3-gi


def xdotool(env, *args) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True).stdout


def window_center(env, name: str) -> tuple[int, int]:
    wid = xdotool(env, "search", "--sync", "--onlyvisible", "--name", name).split()[0]
    geo = dict(
        line.split("=", 1)
        for line in xdotool(env, "getwindowgeometry", "--shell", wid).splitlines()
        if "=" in line
    )
    return int(geo["X"]) + int(geo["WIDTH"]) // 2, int(geo["Y"]) + int(geo["HEIGHT"]) // 2


def drag(env, source: tuple[int, int], target: tuple[int, int]) -> None:
    """Press on the source, move in small steps as a hand would, release on the target."""
    xdotool(env, "mousemove", str(source[0]), str(source[1]))
    xdotool(env, "mousedown", "1")
    steps = 25
    for i in range(1, steps + 1):
        x = source[0] + (target[0] - source[0]) * i // steps
        y = source[1] + (target[1] - source[1]) * i // steps
        xdotool(env, "mousemove", str(x), str(y))
        time.sleep(0.03)
    time.sleep(0.3)
    xdotool(env, "mouseup", "1")


def test_dragged_video_streams_back_identical(app, app_env, tmp_path):
    driver = app
    WebDriverWait(driver, 30).until(
        lambda d: "Uploading to" in d.find_element(By.CSS_SELECTOR, "[data-testid=connection]").text
    )

    video = tmp_path / "dragged clip.mp4"
    data = os.urandom(3 * 1024 * 1024 + 17)
    video.write_bytes(data)

    source = subprocess.Popen(
        [SYSTEM_PYTHON, str(HERE / "drag_source.py"), "1000", "80", str(video)],
        env=app_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert source.stdout.readline().strip() == "ready"
        drag(app_env, window_center(app_env, "reelup-drag-source"), window_center(app_env, "^Reelup$"))

        url_field = WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=url]")
        )
        row = driver.find_element(By.CSS_SELECTOR, "[data-testid=upload-row]:first-child")
        assert row.find_element(By.CSS_SELECTOR, "[data-testid=name]").get_attribute("textContent") == "dragged clip.mp4"
        assert row.get_attribute("data-state") == "done"
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "main-window.png"))

        url = url_field.get_attribute("value")
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        stop(source)


def test_a_dropped_non_video_gets_a_message_and_no_upload(app, app_env, tmp_path):
    driver = app
    WebDriverWait(driver, 30).until(
        lambda d: "Uploading to" in d.find_element(By.CSS_SELECTOR, "[data-testid=connection]").text
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    source = subprocess.Popen(
        [SYSTEM_PYTHON, str(HERE / "drag_source.py"), "1000", "80", str(notes)],
        env=app_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert source.stdout.readline().strip() == "ready"
        drag(app_env, window_center(app_env, "reelup-drag-source"), window_center(app_env, "^Reelup$"))
        notice = WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "[data-testid=notice]")
        )
        assert "notes.txt: not a video" in notice.get_attribute("textContent")
        names = [
            row.find_element(By.CSS_SELECTOR, "[data-testid=name]").get_attribute("textContent")
            for row in driver.find_elements(By.CSS_SELECTOR, "[data-testid=upload-row]")
        ]
        assert "notes.txt" not in names, names
    finally:
        stop(source)
