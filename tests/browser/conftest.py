"""Browser-tier fixtures: the integration tier's real ComfyUI server (this pack + the tiny models)
seen through its web frontend in headless Chromium.

The server fixtures live in tests/conftest.py, so run together with tests/integration both tiers
share one server.
"""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # browser_session helper module

@pytest.fixture(scope="session")
def chromium() -> str:
    from browser_session import find_chromium

    pytest.importorskip("playwright.sync_api", reason="the Python 'playwright' package drives Chromium")
    executable = find_chromium()
    if executable is None:
        pytest.skip("headless Chromium not found: apt-get install chromium, or set PULID_STUDIO_CHROMIUM "
                    "(never 'playwright install', which downloads browsers)")
    return executable


@pytest.fixture(scope="module")
def frontend(comfyui_path, chromium, comfy_server):
    """One tab on the session's server for a test module, console recorded from the first request."""
    from browser_session import open_frontend

    with open_frontend(comfy_server.url, chromium) as page:
        yield page
