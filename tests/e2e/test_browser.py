"""The app in a real browser: `streamlit run app.py` on a free loopback port, driven by Playwright in Debian's
Chromium. Every page opens without an exception, the temperature slider moves the numbers, and a tiny training run
updates its live chart and finishes. A screenshot of each page is saved (artifacts/screenshots by default)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("DISTILL_SCREENSHOTS", ROOT / "artifacts" / "screenshots"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    home = tmp_path_factory.mktemp("e2e_home")
    env = {**os.environ, "DISTILL_HOME": str(home), "DISTILL_MAX_WORKERS": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true",
               "--server.fileWatcherType", "none"]  # fmt: skip
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed in the teardown below
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"streamlit did not start; log:\n{(home / 'server.log').read_text()[-3000:]}")
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    context.close()


def _open(page: Page, url: str) -> None:
    page.goto(url)
    _settle(page)


def _settle(page: Page, timeout: float = 60_000) -> None:
    """Wait until the script has finished its run (the app is idle) and nothing is still loading."""
    page.wait_for_selector(IDLE, timeout=timeout)
    page.wait_for_timeout(400)  # Plotly draws just after the script run ends
    page.wait_for_selector(IDLE, timeout=timeout)


def _no_exceptions(page: Page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()


def _shoot(page: Page, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})  # measure from the default size, not the last shot's
    page.wait_for_timeout(300)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height), 6000))})
    page.wait_for_timeout(1000)  # charts re-layout to the new size
    page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.mark.parametrize("path", ["", "explorer", "train", "runs", "teachers"])
def test_every_page_opens_without_an_exception(server, page, path):
    _open(page, f"{server}/{path}")
    _no_exceptions(page)
    # Opened directly (a bookmark, a refresh), every page still gets the shared sidebar from app.py.
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Dataset")
    _shoot(page, path or "home")


def test_moving_the_temperature_slider_changes_the_entropy(server, page):
    _open(page, f"{server}/explorer")
    metrics = page.locator('[data-testid="stMetricValue"]')
    expect(metrics.first).to_be_visible()
    before = metrics.all_inner_texts()
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(6):
        slider.press("ArrowRight")
    _settle(page)
    expect(metrics.first).not_to_have_text(before[0])
    _no_exceptions(page)
    _shoot(page, "explorer-hot")


def _accuracy_points(page: Page) -> int:
    """How many epochs the live accuracy chart has drawn (points of its first trace)."""
    return page.evaluate(
        """() => {
            const plot = document.querySelector('.js-plotly-plot');
            return plot && plot.data && plot.data.length ? (plot.data[0].x || []).length : 0;
        }"""
    )


def _start_and_watch(page: Page, epochs: int, limit_seconds: float) -> list[int]:
    """Press Start, then sample the live chart until the run completes; returns the point counts seen."""
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url("**run=*", timeout=30_000)
    counts = []
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        counts.append(_accuracy_points(page))
        if "status: completed" in page.locator('[data-testid="stMain"]').inner_text():
            break
        page.wait_for_timeout(700)
    else:
        pytest.fail(f"the run did not complete in {limit_seconds} s; chart point counts seen: {counts}")
    _settle(page)
    assert len({c for c in counts if 0 < c < epochs}) >= 2, f"the live chart never updated mid-run: {counts}"
    assert _accuracy_points(page) == epochs
    _no_exceptions(page)
    return counts


def test_a_tiny_run_updates_its_live_chart_and_finishes(server, page):
    _open(page, f"{server}/train")
    epochs = page.get_by_label("Epochs")
    epochs.fill("50")
    epochs.press("Tab")  # commits the value; Enter would submit the form
    fraction = page.get_by_role("slider", name="Share of the train split used as the transfer set")
    fraction.focus()
    fraction.press("Home")  # the smallest transfer set: 5% of the train split
    _start_and_watch(page, epochs=50, limit_seconds=240)
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()


def test_the_missing_threes_preset_shows_unseen_threes_recognised(server, page):
    # The workshop's headline demo, end to end: one click for Hinton's setup, then Start.
    _open(page, f"{server}/train")
    page.get_by_role("button", name="Preset: Hinton's missing 3s").click()
    _settle(page)
    _start_and_watch(page, epochs=30, limit_seconds=400)
    main = page.locator('[data-testid="stMain"]')
    expect(main.get_by_text("Distilled + bias shift", exact=True)).to_be_visible()
    _shoot(page, "train-missing-threes")
    run_id = page.url.split("run=")[1].split("&")[0]
    _open(page, f"{server}/runs")  # the finished run is listed on the Runs page
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("Runs")
    expect(page.locator('[data-testid="stDataFrame"]')).to_be_visible()
    _no_exceptions(page)
    _shoot(page, "runs-after-demo")
    assert run_id
