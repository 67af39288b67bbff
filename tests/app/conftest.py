"""Fixtures for real-app tests: Xvfb, the local stack, tauri-driver and the Reelup app.

Every process started here is ended here, by PID. Run inside `dbus-run-session` (./dev
test does) so GTK and WebKit get a private bus that ends with the run.
"""
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
ARTIFACTS = ROOT / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def display():
    """A private X server; its number is picked by Xvfb itself (-displayfd)."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    yield f":{number}"
    stop(proc)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("server")
    proc = subprocess.Popen(
        [TARGET / "debug" / "reelup-server", "--local", "--listen", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready = json.loads(proc.stdout.readline())
    yield ready
    stop(proc)


@pytest.fixture(scope="session")
def app_env(display, local_stack, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    env = dict(os.environ)
    env.update(
        DISPLAY=display,
        REELUP_ENDPOINT=local_stack["endpoint"],
        REELUP_CDN=local_stack["cdn"],
        REELUP_TOKEN=local_stack["token"],
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        # No accessibility bus and no GPU under Xvfb: fewer helpers, steadier rendering.
        NO_AT_BRIDGE="1",
        LIBGL_ALWAYS_SOFTWARE="1",
    )
    env.pop("WAYLAND_DISPLAY", None)
    return env


@pytest.fixture
def app(app_env):
    """The real Reelup binary in a real WebKitGTK webview, driven over WebDriver."""
    driver_bin = shutil.which("tauri-driver") or str(Path.home() / ".cargo" / "bin" / "tauri-driver")
    port, native = free_port(), free_port()
    proc = subprocess.Popen(
        [driver_bin, "--port", str(port), "--native-port", str(native)],
        env=app_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # tauri-driver proxies to WebKitWebDriver, which it starts on the native port.
    wait_port(port)
    wait_port(native)
    options = ArgOptions()
    options.set_capability("browserName", "wry")
    options.set_capability("tauri:options", {"application": str(TARGET / "debug" / "reelup-app")})
    driver = webdriver.Remote(command_executor=f"http://127.0.0.1:{port}", options=options)
    try:
        yield driver
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            driver.quit()
        finally:
            stop(proc)
