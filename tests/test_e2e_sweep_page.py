"""A sweep's page in a real browser (#20): Debian's chromium on a real server with a real
worker. The page follows the sweep live (its progress bar moves before DONE), then shows
the heatmap and the results; a header sorts them; Promote makes a run that reaches DONE.
Screenshots are saved with the test output.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
"""

import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.live_jobs import live_worker, manage
from tests.live_server import LiveServer, live_server
from tests.test_e2e_pages import CHROMIUM, browser, page, shot  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
FAST, SLOW = 10, 60
BODY = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "sma_crossover",
    "grid": {
        "fast": {"from": 5, "to": 4 + FAST, "step": 1},
        "slow": {"from": 110, "to": 100 + 10 * SLOW, "step": 10},
    },
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
}


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("sweep-page")
    env = {"SWEEP_CHUNK_VARIANTS": "20", "RUN_STATUS_POLL_SECONDS": "0.2"}
    manage(tmp, "migrate", "--no-input", **env)
    manage(tmp, "load_demo", **env)
    with live_server("daphne", tmp, **env) as live, live_worker(tmp, **env):
        yield live


def call(live: LiveServer, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        live.http_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_sweep_page_follows_progress_then_sorts_and_promotes(service, page) -> None:  # noqa: F811
    created = call(service, "POST", "/sweeps", BODY)
    sweep_id = created["sweep_id"]
    page.goto(f"{service.http_url}/runs/sweeps/{sweep_id}")
    # Live: the bar moves while the sweep is still running (the page has not reloaded).
    page.wait_for_function(
        "(() => { const p = document.getElementById('progress');"
        " return p && p.value > 0 && p.value < p.max"
        " && document.getElementById('waiting') !== null; })()",
        timeout=60_000,
    )
    shot(page, "sweep-1-running")
    # Finished: the page reloaded without its "waiting" line, the heatmap whole.
    page.wait_for_function(
        "!document.getElementById('waiting') && document.getElementById('heatmap') !== null",
        timeout=120_000,
    )
    assert page.text_content("[data-field=status]") == "DONE"
    cells = page.query_selector_all("#heatmap td")
    assert len(cells) == FAST * SLOW
    heat = call(service, "GET", f"/sweeps/{sweep_id}/heatmap?x=fast&y=slow&metric=sharpe")
    first = page.get_attribute("#heatmap tbody tr:first-child td >> nth=0", "data-value")
    assert float(first) == heat["z"][0][0]
    shot(page, "sweep-2-done")

    page.click("a[data-order=total_return]")
    page.wait_for_url("**order=-total_return**")
    best = call(service, "GET", f"/sweeps/{sweep_id}/results?order=-total_return&limit=25")
    shown = [
        int(r.get_attribute("data-variant"))
        for r in page.query_selector_all("#results tr[data-variant]")
    ]
    assert shown == [item["variant"] for item in best["items"]]

    page.click("#results tr[data-variant] button")
    page.wait_for_url("**/runs/*")
    run_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("[data-metric='sharpe']", timeout=60_000)  # the run reached DONE
    run = call(service, "GET", f"/backtests/{run_id}")
    assert run["params"] == best["items"][0]["params"]
    assert run["metrics"]["total_return"] == best["items"][0]["metrics"]["total_return"]
    shot(page, "sweep-3-promoted-run")
