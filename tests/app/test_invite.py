"""An invite link connects the app in one step: opened from outside (the desktop hands the
`reelup://` link to a second launch, as the packages' desktop entry does), shown in Settings
for the user to agree to, redeemed for a token that goes only to the Secret Service, and
refused the second time with nothing changed."""
import subprocess
import urllib.parse

from selenium.webdriver.support.ui import WebDriverWait

from conftest import PROFILE, bin_path, secret_lookup
from reelup_ui import click, css, text, wait_connected


def forged(link: str) -> str:
    """The same link with one character of its code changed."""
    parts = urllib.parse.urlsplit(link)
    query = urllib.parse.parse_qs(parts.query)
    code = query["code"][0]
    query["code"] = [code[:-3] + ("A" if code[-3] != "A" else "B") + code[-2:]]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))


def open_link(app_env, link: str) -> None:
    """What a browser does with a reelup:// link: starts the app with it as the only
    argument; the running app takes it over."""
    launch = subprocess.run([bin_path("reelup-app"), link], env=app_env, capture_output=True, timeout=60)
    assert launch.returncode == 0, launch.stderr


def test_an_opened_invite_link_connects_once_after_consent(app, app_env, local_stack, keyring):
    driver = app
    wait_connected(driver)
    link = local_stack["invite"]
    assert link.startswith("reelup://connect?") and local_stack["token"] not in link
    before = secret_lookup(keyring["bus"], PROFILE)
    config = app_env["REELUP_CONFIG_DIR"] + "/config.toml"

    # A forged code: read and shown, refused by the server when redeemed; nothing changes.
    open_link(app_env, forged(link))
    WebDriverWait(driver, 30).until(lambda d: css(d, "[data-testid=invite-confirm]").is_displayed(),
                                    "the opened link was not shown for consent")
    click(driver, "[data-testid=invite-accept]")
    WebDriverWait(driver, 30).until(lambda d: css(d, "[data-testid=invite-error]").is_displayed())
    assert "does not accept this invite code" in text(driver, "[data-testid=invite-error]")
    assert secret_lookup(keyring["bus"], PROFILE) == before

    # The real link: its endpoint is shown, and nothing is redeemed before Connect.
    open_link(app_env, link)
    WebDriverWait(driver, 30).until(
        lambda d: text(d, "[data-testid=invite-endpoint]") == local_stack["endpoint"]
        and css(d, "[data-testid=invite-confirm]").is_displayed(),
        "the opened link was not shown for consent",
    )
    assert text(driver, "[data-testid=invite-profile]").startswith(f"{PROFILE} (exists")
    assert secret_lookup(keyring["bus"], PROFILE) == before, "redeemed before the user agreed"
    click(driver, "[data-testid=invite-accept]")
    WebDriverWait(driver, 30).until(
        lambda d: (text(d, "[data-testid=invite-status]") or "").startswith("Connected as"),
        "the invite did not connect",
    )
    assert text(driver, "[data-testid=invite-status]") == f"Connected as dev: profile {PROFILE} is ready."
    stored = secret_lookup(keyring["bus"], PROFILE)
    assert stored and stored != before, "the token the code redeemed for is in the Secret Service"
    assert stored not in open(config).read(), "the token is not in the profiles file"
    wait_connected(driver)

    # The same link again, pasted this time: refused, and the stored token stays.
    field = css(driver, "[data-testid=invite-link]")
    field.clear()
    field.send_keys(link)
    click(driver, "[data-testid=invite-open]")
    WebDriverWait(driver, 30).until(lambda d: css(d, "[data-testid=invite-confirm]").is_displayed())
    click(driver, "[data-testid=invite-accept]")
    WebDriverWait(driver, 30).until(lambda d: css(d, "[data-testid=invite-error]").is_displayed())
    assert "already been used" in text(driver, "[data-testid=invite-error]")
    assert secret_lookup(keyring["bus"], PROFILE) == stored
