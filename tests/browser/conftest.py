"""Fixtures for the browser tests: the local stack, the page a link is embedded in, and a
headless chromium. Every process started here is ended here."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import playback  # noqa: E402


@pytest.fixture(scope="module")
def stack():
    s = playback.start_stack()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def site():
    s = playback.Site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def browser():
    b = playback.Browser()
    yield b
    b.close()
