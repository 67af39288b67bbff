"""Fixtures for real-app tests: Xvfb, the local stack, a private Secret Service, a profile
with its token in that keyring, tauri-driver and the Reelup app.

Every process started here is ended here, by PID (the app itself, which WebKitWebDriver
starts, is found among tauri-driver's descendants and ended by PID too). Run inside
`dbus-run-session --config-file=tests/app/session-bus.conf` (./dev test does) so GTK,
WebKit and gnome-keyring get a private bus that ends with the run.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.remote.client_config import ClientConfig

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
ARTIFACTS = ROOT / "artifacts"
# One folder per run: two runs in one checkout must not read each other's app output.
LOGS = ARTIFACTS / "app-logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
PROFILE = "local"
# The app's single-instance name on the session bus: while it has an owner, a new app
# hands its arguments to that one and exits.
SINGLE_INSTANCE = "dev.reelup.app.SingleInstance"
KEYRING_SERVICE = "dev.reelup.Reelup"
# The queue's tuning for every test: one part in flight for all files and 2 MB/s in all,
# so a 6 MiB video takes a few seconds, long enough to pause, cancel and watch progress.
BANDWIDTH_LIMIT = 2_000_000
PARTS_IN_FLIGHT = 1


def bin_path(name: str) -> Path:
    return TARGET / "debug" / name


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


def descendants(pid: int) -> list[int]:
    """Every live process under `pid`, read from /proc (children before grandchildren)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the ppid follows it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def end_pids(pids: list[int], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL what is still there after `timeout`."""
    for sig in (15, 9):
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        if not any(alive(p) for p in pids):
            return


def invoke(driver, command: str, args: dict | None = None):
    """Calls one of the app's commands from its page, as the UI does."""
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1])"
        ".then(r => done({ok: r === undefined ? null : r}), e => done({err: e}));",
        command,
        args or {},
    )
    if "err" in result:
        raise RuntimeError(f"{command} failed: {result['err']!r}")
    return result["ok"]


def tidy_queue(driver) -> None:
    """Cancels and removes every unfinished upload, so one test's leftovers (after it
    failed half-way) do not run on in the next test's app."""
    for item in invoke(driver, "list_uploads"):
        if item["state"] in ("queued", "uploading", "paused", "failed"):
            invoke(driver, "cancel_upload", {"id": item["id"]})
        if item["state"] != "done":
            invoke(driver, "remove_upload", {"id": item["id"]})


def bus_name_has_owner(bus: str, name: str) -> bool:
    out = subprocess.run(
        [
            "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{name}",
        ],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus},
        capture_output=True,
        text=True,
    )
    return "boolean true" in out.stdout


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


def launch_stack(data: Path, log_name: str, *args: str) -> tuple[subprocess.Popen, dict]:
    """`reelup-server --local` on `data` with `args`, its log in LOGS (appended to, so a
    stack started again keeps one log); the process and its ready line."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / log_name, "a") as log:
        proc = subprocess.Popen(
            [bin_path("reelup-server"), "--local", "--data-dir", data, *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    return proc, json.loads(proc.stdout.readline())


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    proc, ready = launch_stack(tmp_path_factory.mktemp("server"), "reelup-server.log", "--listen", "127.0.0.1:0")
    yield ready
    stop(proc)


@pytest.fixture(scope="session")
def signed_stack(tmp_path_factory):
    """A second local stack whose CDN route refuses any link that is not signed."""
    proc, ready = launch_stack(
        tmp_path_factory.mktemp("signed-server"), "reelup-server-signed.log",
        "--listen", "127.0.0.1:0", "--require-signed-links",
    )
    yield ready
    stop(proc)


def add_profile(app_env, config: Path, name: str, stack: dict, extra: str = "", default: bool = False) -> str:
    """Adds profile `name` on `stack` to the app's config (made the default with
    `default`) and logs it in with the real CLI; answers the config as it was, to put
    back."""
    before = config.read_text()
    text = before.replace(f'default = "{PROFILE}"', f'default = "{name}"', 1) if default else before
    assert not default or text != before, "the config names the default profile"
    config.write_text(
        text
        + f"\n[profiles.{name}]\n"
        + f'endpoint = "{stack["endpoint"]}"\n'
        + f'cdn = "{stack["cdn"]}"\n'
        + extra
    )
    login = subprocess.run(
        [bin_path("reelup"), "login", "--profile", name],
        input=stack["token"] + "\n", env=app_env, capture_output=True, text=True, timeout=60,
    )
    assert login.returncode == 0, login.stderr
    return before


@pytest.fixture
def signed_profile(app_env, app_dirs, signed_stack):
    """A profile `signed` on the signed-links stack, its token in the keyring, for one
    test (the config is put back after it). Ask for it before `app`, so the app starts
    with it."""
    config = app_dirs["config"] / "config.toml"
    before = add_profile(app_env, config, "signed", signed_stack)
    try:
        yield "signed"
    finally:
        config.write_text(before)


class StoppableStack:
    """A local stack of one test's own, on fixed ports and a data dir that outlive it, so
    it can be stopped mid-upload and started again where it was."""

    def __init__(self, data: Path, log_name: str):
        self.data, self.log_name = data, log_name
        self.listen, self.s3 = free_port(), free_port()
        self.proc = None
        self.ready = None

    def start(self) -> dict:
        self.proc, self.ready = launch_stack(
            self.data, self.log_name, "--listen", f"127.0.0.1:{self.listen}", "--s3-listen", f"127.0.0.1:{self.s3}"
        )
        return self.ready

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@pytest.fixture
def stoppable_default(app_env, app_dirs, tmp_path):
    """A profile `stoppable` on a stack the test can stop and start, made the default (so
    drops go to it), its token in the keyring; the config is put back after the test. Ask
    for it before `app`."""
    stack = StoppableStack(tmp_path / "stoppable-server", "reelup-server-stoppable.log")
    ready = stack.start()
    config = app_dirs["config"] / "config.toml"
    before = add_profile(
        app_env, config, "stoppable", ready, default=True,
        extra=f"parts-in-flight = {PARTS_IN_FLIGHT}\nbandwidth-limit = {BANDWIDTH_LIMIT}\npart-size-mib = 5\n",
    )
    try:
        yield stack
    finally:
        config.write_text(before)
        stack.stop()


@pytest.fixture(scope="session")
def session_bus():
    """The D-Bus session bus for the keyring and the app: dbus-run-session's, unless it
    has none or already has a Secret Service (a desktop's: never touch a real keyring),
    in which case a private dbus-daemon of our own."""
    bus = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if bus and not bus_name_has_owner(bus, "org.freedesktop.secrets"):
        yield bus
        return
    proc = subprocess.Popen(
        ["dbus-daemon", f"--config-file={Path(__file__).with_name('session-bus.conf')}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    address = proc.stdout.readline().strip()
    try:
        yield address
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def keyring(session_bus, tmp_path_factory):
    """gnome-keyring's Secret Service, unlocked, its files in a temp HOME."""
    home = tmp_path_factory.mktemp("keyring-home")
    (home / "data").mkdir()
    os.chmod(home, 0o700)
    env = {
        **os.environ,
        "DBUS_SESSION_BUS_ADDRESS": session_bus,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(home),
    }
    proc = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proc.stdin.write(b"test-keyring-password")
    proc.stdin.close()
    try:
        deadline = time.monotonic() + 15
        while not bus_name_has_owner(session_bus, "org.freedesktop.secrets"):
            if proc.poll() is not None:
                raise RuntimeError(f"gnome-keyring-daemon exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the Secret Service did not come up on the session bus")
            time.sleep(0.1)
        yield {"bus": session_bus, "home": home}
    finally:
        stop(proc)


def secret_lookup(bus: str, profile: str) -> str | None:
    """The token stored for a Reelup profile, read straight from the Secret Service: the
    token of the entry, which also names the endpoint it is bound to, or a bare token as
    older versions stored it."""
    out = subprocess.run(
        ["secret-tool", "lookup", "service", KEYRING_SERVICE, "username", profile],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0 or not out.stdout:
        return None
    try:
        entry = json.loads(out.stdout)
    except ValueError:
        return out.stdout
    return entry["token"] if isinstance(entry, dict) and "reelup-token" in entry else out.stdout


@pytest.fixture(scope="session")
def app_dirs(tmp_path_factory):
    """Where the app keeps things: the profiles file, the queue, and a HOME whose XDG
    dirs hold WebKit's and the plugins' files."""
    root = tmp_path_factory.mktemp("app")
    dirs = {
        "config": root / "reelup-config",
        "data": root / "reelup-data",
        "home": root / "home",
    }
    for d in dirs.values():
        d.mkdir()
    runtime = root / "runtime"
    runtime.mkdir(mode=0o700)
    dirs["runtime"] = runtime
    return dirs


@pytest.fixture(scope="session")
def app_env(display, local_stack, keyring, app_dirs):
    home = app_dirs["home"]
    env = dict(os.environ)
    for name in ("REELUP_TOKEN", "REELUP_ENDPOINT", "REELUP_CDN", "REELUP_PROFILE", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    env.update(
        DISPLAY=display,
        DBUS_SESSION_BUS_ADDRESS=keyring["bus"],
        REELUP_CONFIG_DIR=str(app_dirs["config"]),
        REELUP_DATA_DIR=str(app_dirs["data"]),
        REELUP_LOG="debug",
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_RUNTIME_DIR=str(app_dirs["runtime"]),
        # No accessibility bus and no GPU under Xvfb: fewer helpers, steadier rendering.
        NO_AT_BRIDGE="1",
        LIBGL_ALWAYS_SOFTWARE="1",
    )
    # The profile the tests upload to, as a user would write it, and its token stored
    # in the keyring by the real CLI (which checks it with the endpoint first).
    (app_dirs["config"] / "config.toml").write_text(
        f'default = "{PROFILE}"\n\n'
        f"[profiles.{PROFILE}]\n"
        f'endpoint = "{local_stack["endpoint"]}"\n'
        f'cdn = "{local_stack["cdn"]}"\n'
        f"parts-in-flight = {PARTS_IN_FLIGHT}\n"
        f"bandwidth-limit = {BANDWIDTH_LIMIT}\n"
    )
    login = subprocess.run(
        [bin_path("reelup"), "login", "--profile", PROFILE],
        input=local_stack["token"] + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert login.returncode == 0, login.stderr
    assert secret_lookup(keyring["bus"], PROFILE) == local_stack["token"]
    return env


def log_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::")[-1]) + ".log"


@pytest.fixture
def app_log(request, app_dirs):
    """The file tauri-driver, WebKitWebDriver and the app write their output to. An app
    that WebKitWebDriver starts has its stdout and stderr silenced, so what the app wrote
    to its own log file (in the data dir) during the test is added at the end."""
    LOGS.mkdir(parents=True, exist_ok=True)
    path = LOGS / log_name(request.node.nodeid)
    logs = app_dirs["data"] / "logs"
    seen = {p: p.stat().st_size for p in logs.glob("*.log")} if logs.is_dir() else {}
    yield path
    if logs.is_dir():
        with open(path, "ab") as out:
            for p in sorted(logs.glob("*.log")):
                with open(p, "rb") as f:
                    f.seek(seen.get(p, 0))
                    out.write(f.read())
    # A panic is a bug even when the page looked right (a thread of the app died).
    output = path.read_text(errors="replace") if path.exists() else ""
    if "panicked at" in output:
        at = output.index("panicked at")
        pytest.fail(f"the app panicked (see {path}):\n{output[max(0, at - 200):at + 800]}", pytrace=False)


def wait_no_other_app(env) -> None:
    """Until the last test's app is gone: while one owns the single-instance name, a new
    app hands its arguments over and exits."""
    deadline = time.monotonic() + 30
    while bus_name_has_owner(env["DBUS_SESSION_BUS_ADDRESS"], SINGLE_INSTANCE):
        assert time.monotonic() < deadline, "another Reelup still runs on this session bus"
        time.sleep(0.1)


@pytest.fixture
def app(app_env, app_log):
    """The real Reelup binary in a real WebKitGTK webview, driven over WebDriver."""
    wait_no_other_app(app_env)
    driver_bin = shutil.which("tauri-driver") or str(Path.home() / ".cargo" / "bin" / "tauri-driver")
    port, native = free_port(), free_port()
    with open(app_log, "wb") as log:
        proc = subprocess.Popen(
            [driver_bin, "--port", str(port), "--native-port", str(native)],
            env=app_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    started: list[int] = []
    try:
        # tauri-driver proxies to WebKitWebDriver, which it starts on the native port.
        wait_port(port)
        wait_port(native)
        options = ArgOptions()
        options.set_capability("browserName", "wry")
        options.set_capability("tauri:options", {"application": str(bin_path("reelup-app"))})
        # A frozen app never answers WebDriver: fail the call after a while, don't hang.
        url = f"http://127.0.0.1:{port}"
        driver = webdriver.Remote(
            command_executor=url, options=options, client_config=ClientConfig(remote_server_addr=url, timeout=120)
        )
        # WebKitWebDriver and the app it launched: ended by PID below, whatever quit did.
        started = descendants(proc.pid)
        try:
            yield driver
        finally:
            try:
                tidy_queue(driver)
            finally:
                driver.quit()
    finally:
        started = sorted(set(started + descendants(proc.pid)))
        stop(proc)
        end_pids(started)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, what the window showed: a screenshot and the page's text."""
    outcome = yield
    report = outcome.get_result()
    driver = item.funcargs.get("app") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or driver is None:
        return
    stem = log_name(item.nodeid)[: -len(".log")]
    try:
        LOGS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(LOGS / f"{stem}.failed.png"))
        text = driver.execute_script("return document.body.innerText")
        uploads = invoke(driver, "list_uploads")
        (LOGS / f"{stem}.failed.txt").write_text(f"{text}\n\nlist_uploads: {json.dumps(uploads, indent=1)}\n")
    except Exception as e:  # the app may be what broke
        (LOGS / f"{stem}.failed.txt").write_text(f"could not read the window: {e!r}")
