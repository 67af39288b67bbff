"""What the real-app tests do to the app and read back from it: drags from a file manager
(a GTK drag source and xdotool), the queue and history as the page shows them, the tray
menu, and the bytes behind a streaming link."""
import hashlib
import os
import select
import subprocess
import time
import urllib.request
from pathlib import Path

from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import invoke, stop

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


def drag(env, source: tuple[int, int], target: tuple[int, int], over=None) -> None:
    """Press on the source, move in small steps as a hand would, release on the target.

    X drag-and-drop only drops if the target has answered the source's "may I drop here?"
    before the button goes up; a busy app answers late. So with `over` (a check of the
    target's own view of the drag), the pointer hovers, moving a pixel now and then as a
    hand does, until the target shows the drag is over it, and only then lets go.
    """
    xdotool(env, "mousemove", str(source[0]), str(source[1]))
    xdotool(env, "mousedown", "1")
    steps = 25
    for i in range(1, steps + 1):
        x = source[0] + (target[0] - source[0]) * i // steps
        y = source[1] + (target[1] - source[1]) * i // steps
        xdotool(env, "mousemove", str(x), str(y))
        time.sleep(0.03)
    deadline = time.monotonic() + 20
    wiggle = 0
    while over is not None and not over() and time.monotonic() < deadline:
        wiggle += 1
        xdotool(env, "mousemove", str(target[0] + wiggle % 2), str(target[1]))
        time.sleep(0.1)
    seen = over is None or over()
    for _ in range(3):
        wiggle += 1
        xdotool(env, "mousemove", str(target[0] + wiggle % 2), str(target[1]))
        time.sleep(0.1)
    xdotool(env, "mouseup", "1")
    assert seen, "the target never showed the drag over it"


def window_visible(env, name: str = "^Reelup$") -> bool:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", name], env=env, capture_output=True, text=True
    )
    return found.returncode == 0 and bool(found.stdout.split())


def close_window(env, closed, what: str, timeout: float = 20, name: str = "^Reelup$") -> None:
    """Clicks the window's close button, as far as the app can tell: a window manager sends
    WM_DELETE_WINDOW, and Xvfb runs none, so this does. Returns once `closed()` holds.

    Now and then (about one run in ten here) GTK drops a request that arrives just after
    the window came up or moved, with no window manager in between; a user clicks again,
    and so does this, every 3 s."""
    deadline = time.monotonic() + timeout
    while True:
        send_delete(env, name)
        again = min(deadline, time.monotonic() + 3)
        while time.monotonic() < again:
            if closed():
                return
            time.sleep(0.1)
        assert time.monotonic() < deadline, what


def send_delete(env, name: str) -> None:
    from Xlib import X, display, protocol

    # Every match: a window of an app that is still going away may be listed first.
    wids = [int(w) for w in xdotool(env, "search", "--onlyvisible", "--name", name).split()]
    conn = display.Display(env["DISPLAY"])
    try:
        for wid in wids:
            window = conn.create_resource_object("window", wid)
            event = protocol.event.ClientMessage(
                window=window,
                client_type=conn.intern_atom("WM_PROTOCOLS"),
                data=(32, [conn.intern_atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]),
            )
            window.send_event(event, event_mask=X.NoEventMask)
        conn.flush()
    finally:
        conn.close()


class Lines:
    """Lines from a child's stdout, with a timeout."""

    def __init__(self, proc: subprocess.Popen):
        self.fd = proc.stdout.fileno()
        self.buffer = b""

    def next(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().strip()


def drop_files(env, *paths: Path, driver=None, attempts: int = 3) -> None:
    """Drags `paths` at once from a file-manager-like window onto the Reelup window, and
    returns once the app has taken them. With `driver`, lets go only once the page shows
    the drag over its drop zone. A drag the X server cancelled (nothing dropped, so
    nothing can arrive twice) is tried again."""
    source = subprocess.Popen(
        [SYSTEM_PYTHON, str(HERE / "drag_source.py"), "1000", "80", *map(str, paths)],
        env=env,
        stdout=subprocess.PIPE,
    )
    over = None
    if driver is not None:
        def over():
            return driver.execute_script(
                "return !!document.querySelector('[data-testid=drop-zone].dragging')"
            )
    try:
        lines = Lines(source)
        assert lines.next(30) == "ready", "the drag source did not start"
        said: list[str] = []
        for _ in range(attempts):
            drag(env, window_center(env, "reelup-drag-source"), window_center(env, "^Reelup$"), over)
            said = []
            while (line := lines.next(60)) != "end":
                assert line is not None, f"the drag did not end: {said}"
                said.append(line)
            if "sent" in said:
                return
        raise AssertionError(f"no drop was taken in {attempts} drags: {said}")
    finally:
        stop(source)


def css(driver, selector: str):
    return driver.find_element(By.CSS_SELECTOR, selector)


def click(driver, selector: str, timeout: float = 20) -> None:
    """Clicks the element `selector` names, finding it again if the page redrew it
    between finding and clicking (the profile list is rebuilt on every settings event),
    and trying again while it moves (the drop zone shrinks as the first rows come in)."""

    def clicked(d):
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    retry = (
        NoSuchElementException,
        StaleElementReferenceException,
        ElementNotInteractableException,
        ElementClickInterceptedException,
    )
    WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=retry).until(
        clicked, f"could not click {selector}"
    )


def attr(driver, selector: str, name: str) -> str | None:
    """An attribute of the first element `selector` names (None if there is none), read in
    one step so a redraw cannot come between finding and reading."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
        selector,
        name,
    )


def exists(driver, selector: str) -> bool:
    return driver.execute_script("return document.querySelector(arguments[0]) !== null;", selector)


def text(driver, selector: str) -> str:
    """An element's textContent (WebKitWebDriver's element text comes back empty for some
    visible elements, e.g. the ellipsised header line)."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", selector
    )


def wait_connected(driver, timeout: float = 60) -> None:
    WebDriverWait(driver, timeout).until(
        lambda d: (text(d, "[data-testid=connection]") or "").startswith("Uploading to"),
        "the header never said where uploads go",
    )


def show_tab(driver, name: str) -> None:
    click(driver, f"[data-testid=tab-{name}]")
    WebDriverWait(driver, 10).until(lambda d: css(d, f"[data-testid=view-{name}]").is_displayed())


_QUEUE_JS = """
return [...document.querySelectorAll('[data-testid=upload-row]')].map(r => ({
  id: r.dataset.id,
  state: r.dataset.state,
  name: r.querySelector('[data-testid=name]').textContent,
}));
"""

_HISTORY_JS = """
return [...document.querySelectorAll('[data-testid=history-row]')].map(r => ({
  id: r.dataset.id,
  state: r.dataset.state,
  name: r.querySelector('[data-testid=name]').textContent,
  url: r.querySelector('[data-testid=url]').textContent,
  profile: r.querySelector('[data-testid=profile]').textContent,
}));
"""


def queue_rows(driver) -> dict[str, dict]:
    """The queue view's rows by file name (one page read, so no stale elements)."""
    return {r["name"]: r for r in driver.execute_script(_QUEUE_JS)}


def history_rows(driver) -> dict[str, dict]:
    """History's rows by file name."""
    return {r["name"]: r for r in driver.execute_script(_HISTORY_JS)}


def wait_history(driver, names, timeout: float = 120) -> dict[str, dict]:
    """Waits until every name has a History row with a link; returns those rows."""
    names = list(names)

    def ready(d):
        rows = history_rows(d)
        if all(n in rows and rows[n]["url"].startswith("http") for n in names):
            return {n: rows[n] for n in names}
        return False

    return WebDriverWait(driver, timeout, poll_frequency=0.25).until(
        ready, f"no History rows with links for {names}"
    )


def row_selector(row_id: str, testid: str | None = None) -> str:
    sel = f'[data-testid=upload-row][data-id="{row_id}"]'
    return f"{sel} [data-testid={testid}]" if testid else sel


def tray_menu(driver) -> list[str]:
    """The tray menu's item texts, read back from the real menu by the app."""
    texts = invoke(driver, "tray_menu")
    assert isinstance(texts, list), texts
    return texts


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_sha256(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return sha256(resp.read())
