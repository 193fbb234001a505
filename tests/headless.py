"""Headless Chromium for the browser tests (the HTML report, the manual): Debian's chromium and
chromium-driver through selenium; a reason to skip when any of them is missing."""

import shutil
from typing import Optional

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def missing(target: str) -> Optional[str]:
    """Why no browser test can run here (``target``: the make target that installs what is missing), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed (make {target} installs it)"
    if not CHROMIUM or not DRIVER:
        return f"no chromium + chromedriver here (make {target} installs Debian's chromium and chromium-driver)"
    return None


def chrome(window: str):
    """A headless Chrome driver with browser and network logs kept, closed when the generator ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={window}", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield drv
    drv.quit()
