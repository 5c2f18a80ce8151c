"""The web app in a real browser (#19): Debian's chromium on a real server with a real
worker. Create a run from the form, watch its page reach DONE, read its statistics and
trades against the API's, play it and seek keeping the history, compare two runs, and an
ERROR run's page. Screenshots of each step are saved with the test output.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
"""

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_jobs import api as request
from tests.live_jobs import live_worker, manage
from tests.live_server import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("pages")
    manage(tmp, "migrate", "--no-input")
    manage(tmp, "load_demo")
    with live_server("daphne", tmp) as live, live_worker(tmp, RUN_STATUS_POLL_SECONDS="0.2"):
        yield live


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    # bypass_csp: Playwright's wait_for_function evaluates with eval, which the CSP
    # refuses (test_e2e_cross_site.py checks the pages under the policy).
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def api(live: LiveServer, path: str) -> dict:
    with urllib.request.urlopen(live.http_url + path, timeout=10) as response:
        return json.loads(response.read())


def shot(page, name: str) -> None:
    """A screenshot kept with the test output, checked not blank."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 15_000, f"{name}: the screenshot looks blank"


def create_from_form(page, live: LiveServer, fast: str, slow: str, seed: str) -> str:
    page.goto(f"{live.http_url}/runs/new")
    page.select_option("#dataset_id", "AAPL-2023-1m")
    page.select_option("#strategy_id", "sma_crossover")
    page.fill("[name='sma_crossover.fast']", fast)
    page.fill("[name='sma_crossover.slow']", slow)
    page.fill("#seed", seed)
    page.click("#create")
    page.wait_for_url(re.compile(r".*/runs/[0-9A-Z]{26}$"))
    return page.url.rsplit("/", 1)[1]


def test_a_run_from_the_form_to_its_statistics_trades_and_viewer(service, page) -> None:
    run_id = create_from_form(page, service, "8", "34", "4242")
    shot(page, "1-run-page-waiting")
    page.wait_for_selector("[data-metric='sharpe']", timeout=60_000)  # DONE: reloaded
    assert page.text_content("[data-field=status]") == "DONE"
    page.wait_for_function("Number(document.getElementById('equity-chart').dataset.drawn) > 0")
    shot(page, "2-run-page-done")
    detail = api(service, f"/backtests/{run_id}")
    for name, value in detail["metrics"].items():
        if name == "computed_at":
            continue
        raw = page.get_attribute(f"[data-metric='{name}']", "data-value")
        assert (raw == "") if value is None else float(raw) == pytest.approx(value), name
    trades = api(service, f"/backtests/{run_id}/trades?limit=50")
    rows = page.query_selector_all("tr[data-trade]")
    assert len(rows) == min(50, trades["total"]) > 0
    assert [r.get_attribute("data-entry") for r in rows] == [t["entry_ts"] for t in trades["items"]]

    page.click("#play-link")
    page.wait_for_selector("#run-facts")  # the run's header, before Play
    assert "AAPL" in page.text_content("h1") and "fast=8, slow=34" in page.text_content("h1")
    page.wait_for_function("document.getElementById('transport').textContent === 'WebSocket'")
    page.click("#play")
    page.wait_for_function("Number(document.getElementById('viewer').dataset.frames || 0) > 30")
    page.click("#pause")
    page.eval_on_selector(
        "#scrubber", "el => { el.value = '60000'; el.dispatchEvent(new Event('change')); }"
    )
    page.wait_for_function(
        "document.getElementById('position').textContent.startsWith('bar 60000 ')"
    )
    # The history before the seek is kept: hundreds of candles, not one.
    assert page.evaluate("window.viewer.candles()") > 500
    assert page.evaluate("window.viewer.positions()") == page.evaluate("window.viewer.candles()")
    held_orders = page.evaluate("window.viewer.state.markers.length")
    window = api(service, f"/backtests/{run_id}/bars?to=60000&max=2000")
    assert held_orders == len(window["orders"])  # every order before the seek, as a marker
    # A marker's tooltip: its order's side, quantity, price and fee.
    x = page.evaluate(MARKER_IN_VIEW)
    assert x is not None, "no order marker in view after the seek"
    box = page.locator("#price-chart").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + box["height"] / 2)
    page.wait_for_selector("#tooltip:not([hidden])")
    tooltip = page.text_content("#tooltip")
    assert re.fullmatch(r"((buy|sell) \d+\.\d{4} at \d+\.\d{2}, fee \d+\.\d{2}\n?)+", tooltip)
    shot(page, "3-viewer-after-seek")


# The x of the latest order marker inside the price chart's plot, or null.
MARKER_IN_VIEW = """() => {
  const width = document.getElementById('price-chart').clientWidth;
  for (const marker of [...window.viewer.state.markers].reverse()) {
    const x = window.viewer.x(marker.time);
    if (x !== null && x > 5 && x < width - 90) return x;
  }
  return null;
}"""


def test_compare_two_runs(service, page) -> None:
    done = api(service, "/backtests?status=DONE&symbol=AAPL&limit=2")["items"]
    ids = ",".join(run["run_id"] for run in done)
    page.goto(f"{service.http_url}/runs/compare?ids={ids}")
    page.wait_for_function("document.getElementById('compare-chart').dataset.drawn === '2'")
    assert len(page.query_selector_all("#compare tr[data-metric]")) > 20
    shot(page, "4-compare")


def test_an_error_runs_page_says_why_and_cannot_play(service, page) -> None:
    failed = api(service, "/backtests?status=ERROR&limit=1")["items"][0]
    page.goto(f"{service.http_url}/runs/{failed['run_id']}")
    assert page.text_content("#run-error").strip()
    assert page.query_selector("#play-link") is None
    page.goto(f"{service.http_url}/backtests/{failed['run_id']}/play")
    assert page.text_content("#run-error").strip()
    assert page.is_disabled("#play") and page.is_disabled("#scrubber")
    shot(page, "5-error-run")


def test_the_list_shows_the_runs_and_filters_them(service, page) -> None:
    page.goto(service.http_url + "/")
    total = api(service, "/backtests?limit=1")["total"]
    assert len(page.query_selector_all("tr[data-run]")) == min(25, total)
    page.select_option("select[name=status]", "DONE")
    page.click("form.filters button")
    statuses = {r.get_attribute("data-status") for r in page.query_selector_all("tr[data-run]")}
    assert statuses == {"DONE"}
    shot(page, "6-run-list")


def test_the_lists_waiting_rows_follow_their_runs(browser, tmp_path: Path) -> None:
    """A QUEUED row turns DONE on its own, with its figures, once a worker computes it."""
    from playwright.sync_api import expect

    manage(tmp_path, "migrate", "--no-input")
    manage(tmp_path, "load_demo")
    body = {
        "dataset_id": "AAPL-2023-1m",
        "strategy_id": "sma_crossover",
        "params": {"fast": 9, "slow": 41},
        "slippage_fees": {"k_spread": 0.05, "fees_bps": 1},
        "seed": 7,
    }
    with live_server("daphne", tmp_path) as live:
        status, run = request(live.http_url, "POST", "/backtests", body)
        assert status == 202 and run["status"] == "QUEUED", run
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        page.goto(live.http_url + "/")
        row = f"tr[data-run='{run['run_id']}']"
        assert page.get_attribute(row, "data-status") == "QUEUED"  # no worker yet
        with live_worker(tmp_path, RUN_STATUS_POLL_SECONDS="0.2"):
            page.wait_for_selector(f"{row}[data-status='DONE']", timeout=60_000)
        # The list reloads to show the run's figures (numbers where there were none).
        expect(page.locator(f"{row} td.num").first).to_have_text(re.compile(r"\d"))
        assert page.text_content(f"{row} [data-field=status]").strip() == "DONE"
        shot(page, "7-run-list-followed")
        context.close()


UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, button, a[href]')]
  .filter(el => !el.hidden && el.offsetParent !== null)
  .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                  || el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 120))"""


def test_every_control_has_a_name_and_the_pages_fit_1024_pixels(service, browser) -> None:
    done = api(service, "/backtests?status=DONE&symbol=AAPL&limit=2")["items"]
    context = browser.new_context(viewport={"width": 1024, "height": 768}, bypass_csp=True)
    page = context.new_page()
    for path in (
        "/",
        "/runs/new",
        f"/runs/{done[0]['run_id']}",
        f"/runs/compare?ids={done[0]['run_id']},{done[1]['run_id']}",
        f"/backtests/{done[0]['run_id']}/play",
    ):
        page.goto(service.http_url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(UNLABELLED) == [], path
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1024, f"{path} is {width} px wide at 1024"
        # Keyboard reachable: Tab moves the focus onto the page's controls.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement !== document.body"), path
    context.close()


def test_the_viewer_plays_and_pauses_from_the_keyboard(service, page) -> None:
    done = api(service, "/backtests?status=DONE&symbol=AAPL&limit=1")["items"][0]
    page.goto(f"{service.http_url}/backtests/{done['run_id']}/play")
    page.wait_for_function("document.getElementById('transport').textContent === 'WebSocket'")
    page.keyboard.press("Space")
    page.wait_for_function("Number(document.getElementById('viewer').dataset.frames || 0) > 5")
    page.keyboard.press("Space")
    assert page.evaluate("window.viewer.state.playing") is False
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_function("document.getElementById('position').textContent.startsWith('bar ')")
    page.select_option("#tz", "America/New_York")
    assert page.text_content("#tz-label") == "America/New_York"


def test_the_viewers_charts_fill_the_window(service, browser) -> None:
    """No blank area under the charts: they grow with the window, down to its bottom."""
    done = api(service, "/backtests?status=DONE&symbol=AAPL&limit=1")["items"][0]
    price_heights = []
    for height in (800, 1200):
        context = browser.new_context(viewport={"width": 1280, "height": height})
        page = context.new_page()
        page.goto(f"{service.http_url}/backtests/{done['run_id']}/play")
        page.wait_for_load_state("networkidle")
        box = page.locator("#equity-chart").bounding_box()
        last = page.evaluate("document.documentElement.scrollHeight")
        assert last <= height, f"the viewer scrolls at {height} px high ({last} px)"
        assert box["y"] + box["height"] >= height - 80, f"blank under the charts at {height}"
        price_heights.append(page.locator("#price-chart").bounding_box()["height"])
        context.close()
    assert price_heights[1] - price_heights[0] > 200, price_heights
