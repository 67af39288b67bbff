#!/usr/bin/env python3
"""What `./dev package` hands the Tauri CLI, and the update manifest it writes after.

    package_config.py CLI_BINARY
        prints a config overlay (JSON, merged over src-tauri/tauri.conf.json): the `reelup`
        CLI beside the app in both packages, updater artifacts, and, when REELUP_UPDATE_FEED
        is set, the update channel (feed + public key) compiled into the app.
    package_config.py --manifest BUNDLE_DIR OUT_DIR
        copies the installers and updater artifacts (.deb, .rpm; macOS .dmg and
        .app.tar.gz; Windows NSIS setup.exe) with their signatures to OUT_DIR and writes
        latest.json there, with an entry per platform the updater looks up.
    package_config.py --merge OUT_JSON PART_JSON...
        one latest.json from each platform's (the release workflow's last step).

Environment: see `./dev` (cmd_package) and docs/releasing.md.
"""

import datetime
import ipaddress
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.parse


def die(message: str) -> None:
    print(f"package: {message}", file=sys.stderr)
    sys.exit(1)


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The feed's authority (after `//`, up to the first `/`, `?` or `#`): a plain host (ASCII
# letters, digits, dots and dashes; an IDN written as punycode) or a bracketed IPv6
# address, and an optional port. Nothing else: no user info, no percent-escapes.
AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


def feed_problem(feed: str) -> str | None:
    """Why the app must not be built with `feed` as its update feed, or None.

    The app reads the feed URL with the `url` crate (WHATWG's URL standard, through Tauri's
    updater); this script reads it with urllib. The two disagree on some text:
    `http://evil\\@localhost/` is host `evil` to WHATWG (which reads `\\` as `/`) and
    loopback to urllib (which reads `evil\\` as a user name), so the script would allow
    plain http to a host the app takes for another. Rather than parse it a third way, only
    URLs on which both parsers must agree are taken: plain ASCII with no whitespace, no
    backslash, no user info, and an authority that is just a host and a port.
    """
    if "\\" in feed:
        return "has a backslash, which the app's URL parser reads as '/' and Python's does not; write the URL with '/' only"
    if not feed.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in feed):
        return "has spaces, control or non-ASCII characters; write it in plain ASCII (an IDN host as punycode)"
    parts = urllib.parse.urlsplit(feed)
    if parts.scheme not in ("https", "http") or not feed.lower().startswith(f"{parts.scheme}://"):
        return "must start with https:// (plain http only on loopback, for tests)"
    if "@" in parts.netloc:
        return "has a user name or password before its host (user@host), which hides where it connects; remove the part up to and including '@'"
    authority = AUTHORITY.fullmatch(parts.netloc)
    if not authority or (authority["port"] and int(authority["port"]) > 65535):
        return "must name a plain host (letters, digits, '.', '-'; an IDN as punycode) or [IPv6], and an optional port, with nothing else before the path"
    if parts.scheme == "http" and not is_loopback(feed):
        return "must be https (plain http only on loopback, for tests)"
    return None


def overlay(cli: str) -> dict:
    if not os.path.isfile(cli):
        die(f"{cli} does not exist: build it with `cargo build --release -p reelup-cli`")
    files = {"/usr/bin/reelup": os.path.abspath(cli)}
    config: dict = {"bundle": {"linux": {"deb": {"files": files}, "rpm": {"files": files}}}}
    if os.environ.get("REELUP_VERSION"):
        config["version"] = os.environ["REELUP_VERSION"]
    feed = os.environ.get("REELUP_UPDATE_FEED")
    if feed:
        problem = feed_problem(feed)
        if problem:
            die(f"REELUP_UPDATE_FEED={feed!r} {problem}")
        scheme = urllib.parse.urlsplit(feed).scheme
        # The Tauri CLI signs what the updater installs only when there is an update
        # channel; without one, `manifest` signs the packages itself.
        config["bundle"]["createUpdaterArtifacts"] = True
        config["plugins"] = {
            "updater": {
                "pubkey": os.environ["REELUP_UPDATE_PUBKEY"],
                "endpoints": [feed],
                # The feed is not signed, only the packages: a tampered feed must not be
                # able to pair a new version number with an older signed package.
                "requireSignedVersion": True,
                # Only ever true for a loopback feed (the update test's local server).
                "dangerousInsecureTransportProtocol": scheme == "http",
            }
        }
    return config


def signature(package: pathlib.Path, version: str | None) -> str:
    sig = package.with_name(package.name + ".sig")
    if not sig.exists():
        # Without an update channel the Tauri CLI makes no signatures: sign with the same
        # key, bound to the version as the CLI's own are (`requireSignedVersion`).
        tauri = pathlib.Path(__file__).resolve().parent.parent / "ui/node_modules/.bin/tauri"
        env = dict(os.environ)
        key = env.get("TAURI_SIGNING_PRIVATE_KEY", "")
        args = [str(tauri), "signer", "sign"]
        if key and os.path.isfile(key):
            # The CLI's build takes a path here, `signer sign` only the key itself.
            env.pop("TAURI_SIGNING_PRIVATE_KEY")
            args += ["-f", key]
        if version:
            args += ["--app-version", version]
        subprocess.run([*args, str(package)], check=True, stdout=subprocess.DEVNULL, env=env)
    return sig.read_text().strip()


ARCH = {"amd64": "x86_64", "arm64": "aarch64", "x64": "x86_64"}


def updater_artifacts(bundle: pathlib.Path):
    """(file, [updater platform keys], version) for each artifact the updater installs."""
    for deb in sorted(bundle.glob("deb/*.deb")):
        _, ver, arch = deb.stem.split("_")  # Reelup_0.1.0_amd64.deb
        yield deb, [f"linux-{ARCH.get(arch, arch)}-deb"], ver
    for rpm in sorted(bundle.glob("rpm/*.rpm")):
        stem, arch = rpm.stem.rsplit(".", 1)  # Reelup-0.1.0-1.x86_64.rpm
        yield rpm, [f"linux-{ARCH.get(arch, arch)}-rpm"], stem.split("-")[1]
    for app in sorted(bundle.glob("macos/*.app.tar.gz")):
        # A universal build serves both Macs.
        yield app, ["darwin-aarch64-app", "darwin-x86_64-app"], None
    for setup in sorted(bundle.glob("nsis/*-setup.exe")):
        _, ver, arch = setup.name[: -len("-setup.exe")].split("_")  # Reelup_0.1.0_x64-setup.exe
        yield setup, [f"windows-{ARCH.get(arch, arch)}-nsis"], ver


def manifest(bundle: pathlib.Path, out: pathlib.Path) -> None:
    artifacts = list(updater_artifacts(bundle))
    if not artifacts:
        die(f"no installer under {bundle}: did `tauri build` fail?")
    out.mkdir(parents=True, exist_ok=True)
    for dmg in bundle.glob("dmg/*.dmg"):
        shutil.copy2(dmg, out / dmg.name)
    feed = os.environ.get("REELUP_UPDATE_FEED")
    base = os.environ.get("REELUP_UPDATE_BASE") or (feed.rsplit("/", 1)[0] if feed else None)
    # latest.json points the app at its packages: held to the same rule as the feed.
    for name, url in (("REELUP_UPDATE_FEED", feed), ("REELUP_UPDATE_BASE", base)):
        problem = url and feed_problem(url)
        if problem:
            die(f"{name}={url!r} {problem}")
    version = os.environ.get("REELUP_VERSION")
    platforms = {}
    for artifact, keys, ver in artifacts:
        sig = signature(artifact, os.environ.get("REELUP_VERSION") or ver)
        for f in (artifact, artifact.with_name(artifact.name + ".sig")):
            shutil.copy2(f, out / f.name)
        version = version or ver
        for key in keys:
            platforms[key] = {
                "signature": sig,
                "url": f"{(base or '').rstrip('/')}/{urllib.parse.quote(artifact.name)}",
            }
    if not base:
        print("package: REELUP_UPDATE_FEED is not set: these packages do not update "
              "themselves, and no latest.json was written", file=sys.stderr)
        return
    if not version:
        die("cannot tell the version from the artifacts' names: set REELUP_VERSION")
    latest = {
        "version": version,
        "notes": os.environ.get("REELUP_RELEASE_NOTES", f"Reelup {version}"),
        "pub_date": datetime.datetime.now(datetime.timezone.utc)
        .replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "platforms": platforms,
    }
    (out / "latest.json").write_text(json.dumps(latest, indent=2) + "\n")


def merge(out: pathlib.Path, parts: list[pathlib.Path]) -> None:
    manifests = [json.loads(p.read_text()) for p in parts]
    versions = {m["version"] for m in manifests}
    if len(versions) != 1:
        die(f"the platforms were built as different versions: {sorted(versions)}")
    merged = {**manifests[0], "platforms": {}}
    for m in manifests:
        merged["platforms"].update(m["platforms"])
    out.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--manifest":
        manifest(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "--merge":
        merge(pathlib.Path(sys.argv[2]), [pathlib.Path(p) for p in sys.argv[3:]])
    elif len(sys.argv) == 2:
        json.dump(overlay(sys.argv[1]), sys.stdout, indent=2)
    else:
        die(__doc__)
