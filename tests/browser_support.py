"""The real browser of the page tests: Debian's chromium driven by Playwright (the `browser`
fixture in conftest.py launches it). A module whose tests use it sets `pytestmark = NEEDS_CHROMIUM`."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container: no sandbox (no user namespaces), no GPU, no /dev/shm (often 64 MB),
# and none of chromium's own calls home, so a test's traffic is only the pages it opens.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
NEEDS_CHROMIUM = [pytest.mark.browser, pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")]
