"""A real browser (Debian's chromium, headless) plays what Reelup uploaded, from the local
stack's CDN route: a re-laid (faststart) upload starts from the front of the file, and a
signed link plays while an expired or edited one is refused."""
import base64
import json
import shutil
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import playback


def test_a_faststart_upload_reaches_its_first_frame_from_the_start_of_the_file(stack, site, browser, tmp_path):
    # What OBS and phones write: the index (moov) after the media.
    recorded = playback.make_video(tmp_path / "obs.mp4", seconds=20, bitrate="4M")
    assert playback.top_level_boxes(recorded).index("moov") > playback.top_level_boxes(recorded).index("mdat")
    size = recorded.stat().st_size
    # Two names for the same bytes: the queue tells files apart by name and contents.
    as_is = tmp_path / "obs-as-is.mp4"
    shutil.copyfile(recorded, as_is)

    original = browser.play(site.url, stack.upload(as_is, "--faststart=off"))
    faststart = browser.play(site.url, stack.upload(recorded, "--faststart=always"))

    for got in (original, faststart):
        assert got.error is None and got.first_frame_ms is not None, got
        assert got.width == 640, got
    # As recorded, the browser has to fetch the index from the end before the first frame.
    assert any(playback.range_start(r) > size // 2 for r in original.ranges), original
    # Re-laid, it plays from the front: nothing past the first tenth was asked for.
    assert all(playback.range_start(r) < size // 10 for r in faststart.ranges), faststart
    # The file on disk was left as it was.
    assert playback.top_level_boxes(recorded).index("moov") > playback.top_level_boxes(recorded).index("mdat")


def _cloudfront_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().replace("+", "-").replace("=", "_").replace("/", "~")


def _sign_canned(stack: "playback.Stack", url: str, expires: int) -> str:
    """A CloudFront canned-policy link made here with the local stack's own key (ECDSA P-256,
    SHA-256): genuinely signed, so the CDN route can only refuse it for its expiry."""
    key = serialization.load_pem_private_key((stack.home / "store" / "cloudfront-key.pem").read_bytes(), None)
    policy = json.dumps({"Statement": [{"Resource": url, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
                        separators=(",", ":"))
    signature = key.sign(policy.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{url}?Expires={expires}&Signature={_cloudfront_b64(signature)}&Key-Pair-Id={stack.ready['keyPairId']}"


@pytest.fixture(scope="module")
def signing_stack():
    s = playback.start_stack(extra=("--require-signed-links",))
    yield s
    s.stop()


def test_a_signed_link_plays_and_an_expired_or_edited_one_is_refused(signing_stack, site, browser, tmp_path):
    stack = signing_stack
    video = playback.make_video(tmp_path / "review.mp4", seconds=4, faststart=True)
    plain = stack.upload(video)
    item = stack.queue()[-1]
    out = stack.cli("link", str(item["id"]), "--expires", "10m", "--json")
    signed = json.loads(out.stdout)["url"]
    assert signed.startswith(plain + "?Expires=") and "&Signature=" in signed, signed

    played = browser.play(site.url, signed)
    assert played.error is None and played.first_frame_ms is not None, played
    assert set(played.statuses) <= {200, 206}, played

    # The CDN requires signed links: the plain link is refused.
    unsigned = browser.play(site.url, plain)
    assert unsigned.error is not None and unsigned.first_frame_ms is None, unsigned
    assert 403 in unsigned.statuses, unsigned

    # Signed with the right key, but expired a minute ago.
    expired = browser.play(site.url, _sign_canned(stack, plain, int(time.time()) - 60))
    assert expired.error is not None and 403 in expired.statuses, expired
    # The same signature for a later expiry: an edited link.
    edited = signed.replace("Expires=", "Expires=1", 1)
    refused = browser.play(site.url, edited)
    assert refused.error is not None and 403 in refused.statuses, refused
    # The test's own signer is right: the same key and a future expiry play.
    ours = browser.play(site.url, _sign_canned(stack, plain, int(time.time()) + 600))
    assert ours.error is None and ours.first_frame_ms is not None, ours
