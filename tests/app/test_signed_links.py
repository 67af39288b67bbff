"""A profile whose CDN requires signed links, in the real app: History's Play streams a
freshly signed link (the stored link is unsigned, and the CDN refuses it)."""
import subprocess
import uuid

from selenium.webdriver.support.ui import WebDriverWait

from conftest import bin_path, invoke
from selenium.webdriver.common.by import By

from reelup_ui import click, show_tab, text, wait_connected, wait_history


def test_play_streams_a_signed_link_where_links_must_be_signed(signed_profile, app_env, tmp_path, app):
    video = tmp_path / f"signed {uuid.uuid4().hex[:6]}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
         "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-movflags", "+faststart", str(video)],
        check=True,
    )
    # Uploaded by the CLI on the same queue: the app shows it in History as it starts.
    upload = subprocess.run(
        [bin_path("reelup"), "upload", "--profile", signed_profile, str(video)],
        env=app_env, capture_output=True, text=True, timeout=120,
    )
    assert upload.returncode == 0, upload.stderr
    driver = app
    wait_connected(driver)
    show_tab(driver, "history")
    row = wait_history(driver, [video.name])[video.name]
    assert "Signature=" not in row["url"], "the queue keeps the plain link"
    click(driver, f'[data-testid=history-row][data-id="{row["id"]}"] [data-testid=history-play]')
    state = WebDriverWait(driver, 30, poll_frequency=0.25).until(
        lambda d: d.execute_script(
            "const v = document.querySelector('[data-testid=preview-video]');"
            "const failed = !document.querySelector('[data-testid=preview-error]').hidden;"
            "return failed ? 'refused ' + v.currentSrc + ' ' + (v.error && v.error.code) : (v.readyState >= 1 ? v.currentSrc : null);"
        ),
        "the preview neither played nor failed",
    )
    if state.startswith("refused"):
        try:
            signed = invoke(driver, "sign_link", {"id": int(row["id"])})
        except Exception as e:  # what the app answers, for the message
            signed = e
        notes = driver.execute_script("return [...document.querySelectorAll('[data-testid=notice]')].map(n => n.innerText)")
        raise AssertionError(f"Play used a link the CDN refuses: {state}; sign_link: {signed}; notices: {notes}")
    assert "Signature=" in state, state

    # Copy link, then Copy embed: each says what it copied, as two notices (they were one,
    # "Link copied... ×2"), and the button's "Copied", under the pointer that clicked it,
    # stays readable (a hover rule put its white text on a light background).
    click(driver, "[data-testid=preview-close]")
    row_sel = f'[data-testid=history-row][data-id="{row["id"]}"]'
    click(driver, f"{row_sel} [data-testid=history-copy]")
    click(driver, f"{row_sel} [data-testid=history-embed]")
    look = WebDriverWait(driver, 10, poll_frequency=0.05).until(
        lambda d: d.execute_script(
            "const b = document.querySelector(arguments[0]); const s = getComputedStyle(b);"
            "return b.classList.contains('flashed') && [true, b.matches(':hover'), s.backgroundColor, s.color];",
            f"{row_sel} [data-testid=history-embed]",
        ),
        "the embed button never said Copied",
    )
    flashed, hovered, background, colour = look
    assert flashed and hovered, look
    assert contrast(background, colour) >= 3, f"'Copied' is unreadable while hovered: {look}"
    notices = WebDriverWait(driver, 10, poll_frequency=0.2).until(
        lambda d: (lambda t: t if len(t) >= 2 else None)(d.execute_script(
            "return [...document.querySelectorAll('[data-testid=notice]')].map(n => n.innerText)"
        )),
        "two notices",
    )
    assert any(n.startswith("Link copied. It works until") for n in notices), notices
    assert any(n.startswith("Embed code copied. Its link works until") for n in notices), notices
    assert not any("×" in n for n in notices), notices


def contrast(background: str, colour: str) -> float:
    """WCAG's contrast ratio of two CSS `rgb(...)`/`rgba(...)` colours."""
    def luminance(css: str) -> float:
        r, g, b = (int(float(v)) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])

        def channel(c: int) -> float:
            c = c / 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)

    a, b = sorted((luminance(background), luminance(colour)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def test_a_profile_changed_by_the_cli_shows_in_the_running_app(signed_profile, app_env, app):
    """`reelup profile set` while the app runs: Settings shows the new value at once, and an
    open form takes it for the fields not touched (a save wrote back the old copy)."""
    driver = app
    wait_connected(driver)
    show_tab(driver, "settings")
    details = f'[data-testid=profile-row][data-name="{signed_profile}"] [data-testid=profile-details]'
    WebDriverWait(driver, 20).until(lambda d: "no speed limit" in text(d, details), "the profile's card")
    click(driver, f'[data-testid=profile-row][data-name="{signed_profile}"] [data-testid=profile-edit]')
    driver.find_element(By.CSS_SELECTOR, "[data-testid=profile-parts]").clear()
    driver.find_element(By.CSS_SELECTOR, "[data-testid=profile-parts]").send_keys("5")
    cli = subprocess.run(
        [bin_path("reelup"), "profile", "set", signed_profile, "--limit-rate", "5MB"],
        env=app_env, capture_output=True, text=True, timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    WebDriverWait(driver, 20, poll_frequency=0.2).until(
        lambda d: "limit 5 MB/s" in text(d, details), "the card never showed the CLI's limit"
    )
    assert driver.find_element(By.CSS_SELECTOR, "[data-testid=profile-bandwidth]").get_attribute("value") == "5"
    click(driver, "[data-testid=profile-save]")
    WebDriverWait(driver, 20, poll_frequency=0.2).until(
        lambda d: "5 parts at once" in text(d, details), "the form's change was not saved"
    )
    shown = subprocess.run(
        [bin_path("reelup"), "profile", "show", signed_profile],
        env=app_env, capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "bandwidth limit: 5000000 bytes/s" in shown.stdout, shown.stdout
