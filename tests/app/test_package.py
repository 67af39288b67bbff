"""Reelup as users get it on Linux: `./dev package` builds a signed .deb; dpkg installs it;
the desktop entry starts it; it updates itself from a signed feed on loopback, refusing a
package signed with another key or altered after signing; dpkg removes it and leaves only
the user's own data.

These tests install and remove the `reelup` package on this machine (as root, which CI
is). Building the two releases (N and N+1) takes a few minutes with a warm target dir.
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.support.ui import WebDriverWait

from conftest import (
    LOGS,
    ROOT,
    alive,
    descendants,
    end_pids,
    free_port,
    invoke,
    stop,
    wait_no_other_app,
    wait_port,
)
from reelup_ui import (
    click,
    css,
    drop_files,
    fetch_sha256,
    queue_rows,
    sha256,
    show_tab,
    text,
    wait_connected,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs a .deb: needs root (CI is root)")

PACKAGE = "reelup"
APP = Path("/usr/bin/reelup-app")
CLI = Path("/usr/bin/reelup")
TAURI = ROOT / "ui" / "node_modules" / ".bin" / "tauri"
MIB = 1024 * 1024


def cargo_version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)


def next_version(v: str) -> str:
    major, minor, patch = v.split("-")[0].split(".")
    return f"{major}.{minor}.{int(patch) + 1}"


def installed_version() -> str | None:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE], capture_output=True, text=True)
    if out.returncode != 0 or "install ok installed" not in out.stdout:
        return None
    return out.stdout.rsplit(" ", 1)[1]


def purge() -> None:
    subprocess.run(["dpkg", "--purge", PACKAGE], capture_output=True)


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate_key(path: Path) -> str:
    subprocess.run([TAURI, "signer", "generate", "--ci", "-p", "", "-w", path], check=True, capture_output=True)
    return path.with_name(path.name + ".pub").read_text().strip()


class Feed:
    """The update feed on loopback: /latest.json is whatever the test set last; every
    other path is a file under `root`. Counts requests, so a test can wait for a check."""

    def __init__(self, root: Path):
        self.root = root
        self.manifest = b"{}"
        self.hits: list[str] = []
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                feed.hits.append(self.path)
                if self.path.split("?")[0] == "/latest.json":
                    body = feed.manifest
                else:
                    target = (feed.root / self.path.lstrip("/")).resolve()
                    if not target.is_relative_to(feed.root) or not target.is_file():
                        self.send_error(404)
                        return
                    body = target.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, manifest: dict) -> None:
        self.manifest = json.dumps(manifest).encode()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Version N and N+1, both built by `./dev package` with a throwaway update key whose
    public half is compiled into them, and a feed on loopback that N will ask."""
    root = tmp_path_factory.mktemp("releases")
    key = root / "update.key"
    pubkey = generate_key(key)
    feed = Feed(root)
    version, newer = cargo_version(), next_version(cargo_version())
    base_env = {
        **os.environ,
        "TAURI_SIGNING_PRIVATE_KEY": str(key),
        "TAURI_SIGNING_PRIVATE_KEY_PASSWORD": "",
        "REELUP_UPDATE_PUBKEY": pubkey,
        "REELUP_UPDATE_FEED": f"{feed.url}/latest.json",
    }
    out = {}
    LOGS.mkdir(parents=True, exist_ok=True)
    for name, v in (("n", version), ("next", newer)):
        env = {
            **base_env,
            "REELUP_VERSION": v,
            "REELUP_PACKAGE_DIR": str(root / name),
            "REELUP_UPDATE_BASE": f"{feed.url}/{name}",
        }
        with open(LOGS / f"package-{name}.log", "w") as log:
            built = subprocess.run([ROOT / "dev", "package"], env=env, stdout=log, stderr=subprocess.STDOUT, timeout=3600)
        assert built.returncode == 0, f"./dev package failed for {v}: see {LOGS / f'package-{name}.log'}"
        manifest = json.loads((root / name / "latest.json").read_text())
        assert manifest["version"] == v
        assert set(manifest["platforms"]) == {"linux-x86_64-deb", "linux-x86_64-rpm"}
        debs = list((root / name).glob("*.deb"))
        assert len(debs) == 1 and list((root / name).glob("*.rpm")), os.listdir(root / name)
        out[name] = {"version": v, "deb": debs[0], "manifest": manifest, "dir": root / name}
    purge()
    yield {**out, "feed": feed, "root": root, "key": key}
    feed.close()
    purge()


def contents(deb: Path) -> list[str]:
    listing = subprocess.run(["dpkg-deb", "--contents", deb], check=True, capture_output=True, text=True).stdout
    # `./usr/bin/x` or `usr/bin/x`, as dpkg-deb lists them: absolute paths here.
    return ["/" + line.split()[-1].removeprefix("./").rstrip("/") for line in listing.splitlines()]


def desktop_entry() -> tuple[Path, dict[str, str]]:
    files = [f for f in subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True).stdout.split() if f.endswith(".desktop")]
    assert len(files) == 1, files
    entry = {}
    for line in Path(files[0]).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            entry.setdefault(k.strip(), v.strip())
    return Path(files[0]), entry


def installed_app_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/exe").startswith(str(APP)):
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def session(app_env, log_path: Path):
    """A WebDriver session on the installed app (tauri-driver starts /usr/bin/reelup-app)."""
    wait_no_other_app(app_env)
    driver_bin = shutil.which("tauri-driver") or str(Path.home() / ".cargo" / "bin" / "tauri-driver")
    port, native = free_port(), free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([driver_bin, "--port", str(port), "--native-port", str(native)], env=app_env, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    wait_port(native)
    options = ArgOptions()
    options.set_capability("browserName", "wry")
    options.set_capability("tauri:options", {"application": str(APP)})
    url = f"http://127.0.0.1:{port}"
    driver = webdriver.Remote(command_executor=url, options=options, client_config=ClientConfig(remote_server_addr=url, timeout=120))
    return driver, proc


def end_session(driver, proc) -> None:
    started = descendants(proc.pid)
    try:
        driver.quit()
    except Exception:  # the app may have restarted under it
        pass
    stop(proc)
    end_pids(sorted(set(started + installed_app_pids())))


def app_log_text(app_env) -> str:
    logs = Path(app_env["REELUP_DATA_DIR"]) / "logs"
    return "".join(p.read_text(errors="replace") for p in sorted(logs.glob("*.log"))) if logs.is_dir() else ""


def test_the_deb_installs_runs_from_its_desktop_entry_and_carries_the_cli(releases, app_env):
    n = releases["n"]
    files = contents(n["deb"])
    for wanted in (str(APP), str(CLI), "/usr/share/icons/hicolor/128x128/apps/reelup-app.png"):
        assert wanted in files, f"{wanted} is not in the package: {files}"
    assert any(f.startswith("/usr/share/doc/") and f.endswith("/copyright") for f in files), files

    subprocess.run(["dpkg", "-i", n["deb"]], check=True, capture_output=True)
    assert installed_version() == n["version"]

    # The CLI from the package, on PATH.
    out = subprocess.run([CLI, "--version"], capture_output=True, text=True, env=app_env)
    assert out.returncode == 0 and out.stdout.strip() == f"reelup {cargo_version()}", out

    # The desktop entry: what a launcher shows and runs, and the invite-link handler.
    path, entry = desktop_entry()
    assert entry["Name"] == "Reelup"
    assert "x-scheme-handler/reelup" in entry.get("MimeType", ""), entry
    assert entry["Exec"].endswith(" %u"), f"an opened reelup:// link must reach the app: {entry['Exec']}"
    exec_line = [a for a in entry["Exec"].split() if not a.startswith("%")]
    assert Path(shutil.which(exec_line[0]) or exec_line[0]).resolve() == APP, entry["Exec"]

    # Started as a launcher does (gtk-launch runs the entry's Exec through GIO).
    wait_no_other_app(app_env)
    launched = subprocess.Popen(["gtk-launch", path.stem], env=app_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^Reelup$"], env=app_env, capture_output=True, text=True)
            if found.stdout.strip() and installed_app_pids():
                break
            assert time.monotonic() < deadline, "the installed app's window did not appear"
            time.sleep(0.3)
    finally:
        launched.wait(timeout=30)
        end_pids(installed_app_pids())

    # The tray icon of the installed build, and its version in Settings.
    driver, proc = session(app_env, LOGS / "package-install.log")
    try:
        wait_connected(driver)
        menu = invoke(driver, "tray_menu")
        assert any("Reelup" in t for t in menu), menu
        show_tab(driver, "settings")
        WebDriverWait(driver, 20).until(lambda d: text(d, "[data-testid=app-version]") == n["version"])
        status = invoke(driver, "update_status")
        assert status["updatesEnabled"] is True, status
    finally:
        end_session(driver, proc)


def test_updates_refuse_bad_signatures_then_install_and_restart_as_the_next_version(releases, app_env, tmp_path):
    n, nxt, feed = releases["n"], releases["next"], releases["feed"]
    if installed_version() != n["version"]:
        subprocess.run(["dpkg", "-i", n["deb"]], check=True, capture_output=True)
    before = file_sha(APP)

    # 1. Signed with another key: the download is verified and refused.
    other = generate_key(tmp_path / "other.key")
    assert other
    forged = tmp_path / "forged"
    forged.mkdir()
    copy = forged / nxt["deb"].name
    shutil.copy(nxt["deb"], copy)
    subprocess.run([TAURI, "signer", "sign", "-f", tmp_path / "other.key", "-p", "", copy], check=True, capture_output=True,
                   env={k: v for k, v in os.environ.items() if not k.startswith("TAURI_SIGNING")})
    (releases["root"] / "forged").mkdir(exist_ok=True)
    shutil.copy(copy, releases["root"] / "forged" / copy.name)
    wrong_key = json.loads(json.dumps(nxt["manifest"]))
    wrong_key["platforms"]["linux-x86_64-deb"] = {
        "signature": copy.with_name(copy.name + ".sig").read_text().strip(),
        "url": f"{feed.url}/forged/{copy.name}",
    }
    # 2. The right signature, but a byte of the package changed after signing.
    tampered_dir = releases["root"] / "tampered"
    tampered_dir.mkdir(exist_ok=True)
    data = bytearray(nxt["deb"].read_bytes())
    data[len(data) // 2] ^= 0x01
    (tampered_dir / nxt["deb"].name).write_bytes(bytes(data))
    tampered = json.loads(json.dumps(nxt["manifest"]))
    tampered["platforms"]["linux-x86_64-deb"]["url"] = f"{feed.url}/tampered/{nxt['deb'].name}"

    video = tmp_path / "during update.mp4"
    payload = os.urandom(14 * MIB + 11)
    video.write_bytes(payload)

    driver, proc = session(app_env, LOGS / "package-update.log")
    try:
        wait_connected(driver)
        for manifest, what in ((wrong_key, "another key"), (tampered, "an altered package")):
            feed.serve(manifest)
            status = invoke(driver, "check_update")
            assert status["available"]["version"] == nxt["version"], status
            with pytest.raises(RuntimeError) as refused:
                invoke(driver, "install_update")
            assert "'code': 'update_signature'" in str(refused.value), f"{what}: {refused.value}"
            assert installed_version() == n["version"], f"{what} changed the installed package"
            assert file_sha(APP) == before, f"{what} changed {APP}"

        # 3. The real N+1, while an upload runs: found by Check, installed on consent.
        feed.serve(nxt["manifest"])
        drop_files(app_env, video, driver=driver)
        WebDriverWait(driver, 30).until(
            lambda d: (r := queue_rows(d).get(video.name)) and r["state"] == "uploading", "the upload did not start"
        )
        show_tab(driver, "settings")
        click(driver, "[data-testid=update-check]")
        WebDriverWait(driver, 30).until(lambda d: css(d, "[data-testid=update-install]").is_displayed())
        click(driver, "[data-testid=update-install]")
        deadline = time.monotonic() + 180
        while installed_version() != nxt["version"]:
            assert time.monotonic() < deadline, f"the update was not installed:\n{app_log_text(app_env)[-3000:]}"
            time.sleep(0.5)
        # Restarted as N+1 (a new process, started by the old one on its way out).
        while f'version={nxt["version"]}' not in app_log_text(app_env) or not installed_app_pids():
            assert time.monotonic() < deadline, f"the app did not restart as {nxt['version']}:\n{app_log_text(app_env)[-3000:]}"
            time.sleep(0.5)
        log = app_log_text(app_env)
        assert "holding uploads at a part boundary" in log, log[-3000:]
    finally:
        end_session(driver, proc)

    # The queue and profiles came through: the upload finishes, whole, in N+1.
    driver, proc = session(app_env, LOGS / "package-update.log")
    try:
        wait_connected(driver)
        show_tab(driver, "settings")
        WebDriverWait(driver, 20).until(lambda d: text(d, "[data-testid=app-version]") == nxt["version"])
        assert any(p["name"] == "local" for p in invoke(driver, "get_settings")["profiles"])
        deadline = time.monotonic() + 120
        while True:
            item = next((i for i in invoke(driver, "list_uploads") if i["name"] == video.name), None)
            assert item is not None, "the upload was lost in the update"
            if item["state"] == "done":
                break
            assert item["state"] in ("queued", "uploading"), item
            assert time.monotonic() < deadline, item
            time.sleep(0.5)
        assert fetch_sha256(item["url"]) == sha256(payload)
        invoke(driver, "remove_upload", {"id": item["id"]})
    finally:
        end_session(driver, proc)


def test_removing_the_package_leaves_only_the_users_data(releases, app_env):
    if installed_version() is None:
        subprocess.run(["dpkg", "-i", releases["n"]["deb"]], check=True, capture_output=True)
    owned = [Path(f) for f in subprocess.run(["dpkg", "-L", PACKAGE], check=True, capture_output=True, text=True).stdout.split()]
    files = [f for f in owned if f.is_file()]
    assert APP in files and CLI in files
    config = Path(app_env["REELUP_CONFIG_DIR"]) / "config.toml"
    assert config.exists()

    subprocess.run(["dpkg", "--purge", PACKAGE], check=True, capture_output=True)
    assert installed_version() is None
    left = [f for f in files if f.exists()]
    assert left == [], f"left behind by dpkg --purge: {left}"
    # The user's own data stays: profiles and the queue.
    assert config.exists()
    assert any(Path(app_env["REELUP_DATA_DIR"]).iterdir())
    assert not [p for p in installed_app_pids() if alive(p)]
