"""`tollgate dashboard` in headless Chromium: every page loads without a Streamlit exception."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
# url path -> (page title, CSS selector that must be visible, how many of them at least)
PAGES = {
    "": ("Overview", '[data-testid="stDataFrame"]', 1),
    "load-tests": ("Load tests", '[data-testid="stDataFrame"]', 1),
    "load-tests?run=20260102-chat-candidate": ("Load tests", ".js-plotly-plot", 5),
    "load-tests?view=Compare": ("Load tests", ".js-plotly-plot", 1),
    "load-tests?view=Sweeps": ("Load tests", ".js-plotly-plot", 1),
    "live": ("Live", ".js-plotly-plot", 14),
    "drift": ("Drift", ".js-plotly-plot", 2),
    "alerts": ("Alerts", ".js-plotly-plot", 2),
}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(sample_root):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tollgate", "dashboard", "--port", str(port), "--data", str(sample_root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail(
                f"dashboard did not start: {proc.stdout.read().decode() if proc.poll() is not None else 'timeout'}"
            )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,2000",
    ):  # fmt: skip
        options.add_argument(arg)
    with tempfile.TemporaryDirectory(prefix="tollgate-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def test_every_page_renders_in_chromium(dashboard_url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for path, (title, selector, count) in PAGES.items():
        started = time.monotonic()
        browser.get(f"{dashboard_url}/{path}")
        wait = WebDriverWait(browser, 45)
        wait.until(ec.visibility_of_element_located((By.XPATH, f"//h1[contains(., '{title}')]")))
        wait.until(
            lambda d, s=selector, n=count: (
                len([e for e in d.find_elements(By.CSS_SELECTOR, s) if e.is_displayed()]) >= n
            )
        )
        wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'))
        assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), (
            f"exception on /{path}"
        )
        name = (path or "overview").replace("?run=", "-detail-").replace("?view=", "-").lower()
        browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        print(f"/{path}: {time.monotonic() - started:.1f} s")
    assert os.path.getsize(SCREENSHOTS / "live.png") > 10_000
