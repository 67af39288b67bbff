"""A real browser plays what Reelup uploaded, from the local stack's CDN route."""
from pathlib import Path

import playback


def test_a_moov_last_video_makes_the_browser_fetch_its_end_first(stack, site, browser, tmp_path):
    video = playback.make_video(tmp_path / "obs.mp4", seconds=20, bitrate="4M")
    size = video.stat().st_size
    url = stack.upload(video)  # TODO switch to --faststart=off once merged
    got = browser.play(site.url, url)
    assert got.error is None and got.first_frame_ms is not None, got
    assert got.width == 640
    starts = [playback.range_start(r) for r in got.ranges]
    print(got)
    assert any(s > size // 2 for s in starts), f"no request for the index at the end: {got.ranges}"
