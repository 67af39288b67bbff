"""The server going away mid-upload, in the real app: the row, the header and the tray say
the upload waits for the server (the speed and time left stood still before, with a green
dot), and it goes on by itself, to the end, when the server is back."""
import os
import uuid

from selenium.webdriver.support.ui import WebDriverWait

from conftest import invoke
from reelup_ui import drop_files, fetch_sha256, sha256, text, tray_menu, wait_connected, wait_history


def row_look(driver, name: str):
    return driver.execute_script(
        "const r = [...document.querySelectorAll('[data-testid=upload-row]')]"
        "  .find(r => r.querySelector('[data-testid=name]').textContent === arguments[0]);"
        "if (!r) return null;"
        "const t = id => r.querySelector(`[data-testid=${id}]`).textContent;"
        "return { state: r.dataset.state, waiting: r.dataset.waiting, label: t('state'), speed: t('speed'),"
        "         eta: t('eta'), header: document.getElementById('connection').dataset.state };",
        name,
    )


def test_a_server_gone_mid_upload_is_said_and_the_upload_goes_on_when_it_is_back(
    stoppable_default, app_env, tmp_path, app
):
    driver = app
    wait_connected(driver)
    video = tmp_path / f"away {uuid.uuid4().hex[:6]}.mp4"
    # 16 MiB at the tests' 2 MB/s: a few parts, several seconds.
    data = os.urandom(16 * 1024 * 1024)
    video.write_bytes(data)
    drop_files(app_env, video, driver=driver)
    # Under way: at least one part confirmed.
    WebDriverWait(driver, 60, poll_frequency=0.2).until(
        lambda d: any(i["name"] == video.name and i["sent"] > 0 and i["state"] == "uploading"
                      for i in invoke(d, "list_uploads")),
        "the upload never got going",
    )
    stoppable_default.stop()
    look = WebDriverWait(driver, 60, poll_frequency=0.2).until(
        lambda d: (lambda r: r if r and r["waiting"] == "true" and r["header"] == "waiting" else None)(
            row_look(d, video.name)
        ),
        "the row and the header never said the upload waits for the server",
    )
    assert look["label"] == "Waiting for the server", look
    assert look["speed"] == "" and look["eta"] == "", f"a speed that stands still is shown: {look}"
    assert look["header"] == "waiting", look
    assert "Waiting for the server" in text(driver, "#connection")
    WebDriverWait(driver, 20, poll_frequency=0.5).until(
        lambda d: any("Waiting for the server" in t for t in tray_menu(d)), "the tray never said so"
    )
    # A file dropped while the server is down waits its turn (it does not fail for good),
    # and goes up with the other once the server is back.
    late = tmp_path / f"late {uuid.uuid4().hex[:6]}.mp4"
    late_data = os.urandom(200_000)
    late.write_bytes(late_data)
    drop_files(app_env, late, driver=driver)
    WebDriverWait(driver, 30, poll_frequency=0.2).until(
        lambda d: any(i["name"] == late.name for i in invoke(d, "list_uploads")), "the late file was not queued"
    )
    stoppable_default.start()
    rows = wait_history(driver, [video.name, late.name], timeout=180)
    assert fetch_sha256(rows[video.name]["url"]) == sha256(data)
    assert fetch_sha256(rows[late.name]["url"]) == sha256(late_data)
    assert driver.execute_script("return document.getElementById('connection').dataset.state") == "ok"
