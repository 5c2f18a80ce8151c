"""The viewer page in a real browser: Debian's chromium driven by Playwright, against a real
server with the demo's runs.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
"""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_jobs import manage
from tests.live_server import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")
DEMO_RUN = "01HM65JQM043J5BD14TQ8NBVDK"  # sma-20-50 over the demo's AAPL 2023 bars

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]

CANVAS_DRAWN = """() => [...document.querySelectorAll('#price-chart canvas')].some(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 4; i < d.length; i += 4)
    if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
  return false;
})"""
# A socket that cannot connect, as behind a proxy that refuses the upgrade.
NO_WEBSOCKET = """window.WebSocket = class {
  constructor() { setTimeout(() => this.onclose && this.onclose({ code: 1006 }), 10); }
  send() {} close() {}
};"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("viewer")
    manage(tmp, "migrate", "--no-input")
    manage(tmp, "load_demo")
    with live_server("daphne", tmp) as live:
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


def frames(page) -> int:
    return int(page.eval_on_selector("#viewer", "el => Number(el.dataset.frames || 0)"))


def test_a_demo_run_plays_pauses_and_seeks(server: LiveServer, browser, tmp_path: Path) -> None:
    # bypass_csp: Playwright evaluates its wait_for_function expressions with eval, which
    # the page's CSP refuses; test_e2e_cross_site.py checks the viewer under the policy.
    page = browser.new_page(viewport={"width": 1200, "height": 800}, bypass_csp=True)
    page.goto(f"{server.http_url}/backtests/{DEMO_RUN}/play")
    page.wait_for_function("document.getElementById('transport').textContent === 'WebSocket'")
    page.click("#play")
    page.wait_for_function(
        "Number(document.getElementById('viewer').dataset.frames || 0) > 30", timeout=10_000
    )
    assert page.evaluate(CANVAS_DRAWN)  # candles drawn
    assert page.text_content("#total-return") != "-"
    page.click("#pause")
    time.sleep(0.3)  # frames sent before the pause's echo may still arrive
    paused_at = frames(page)
    time.sleep(0.6)
    assert frames(page) == paused_at  # pause stops them
    page.eval_on_selector(
        "#scrubber", "el => { el.value = '50000'; el.dispatchEvent(new Event('change')); }"
    )
    page.wait_for_function(
        "document.getElementById('position').textContent.startsWith('bar 50000 ')"
    )
    assert page.eval_on_selector("#scrubber", "el => el.value") == "50000"
    shot = tmp_path / "viewer.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few KiB
    page.close()


def test_the_viewer_falls_back_to_server_sent_events(server: LiveServer, browser) -> None:
    context = browser.new_context(bypass_csp=True)
    context.add_init_script(NO_WEBSOCKET)
    page = context.new_page()
    page.goto(f"{server.http_url}/backtests/{DEMO_RUN}/play")
    page.wait_for_function(
        "document.getElementById('transport').textContent === 'Server-Sent Events'"
    )
    page.click("#play")
    page.wait_for_function(
        "Number(document.getElementById('viewer').dataset.frames || 0) > 30", timeout=10_000
    )
    assert page.evaluate(CANVAS_DRAWN)
    page.click("#pause")
    time.sleep(0.3)
    paused_at = frames(page)
    time.sleep(0.6)
    assert frames(page) == paused_at
    context.close()


def test_an_unknown_run_is_a_404_page(server: LiveServer, browser) -> None:
    page = browser.new_page(bypass_csp=True)
    response = page.goto(f"{server.http_url}/backtests/01HM65JQM043J5BD14TQ8NBVDX/play")
    assert response.status == 404
    assert "No run has this id" in page.content()
    page.close()
