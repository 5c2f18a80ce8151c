"""The cross-site attack in a real browser (#18): a page served from another site, opened
by a logged-in staff user, posts a form, sends `no-cors` fetches, tries a CORS fetch and
opens a socket against the service: nothing is created or cancelled, and no socket opens.
Then the service's own pages run under its Content-Security-Policy with nothing refused.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it).
"""

import http.server
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_jobs import manage
from tests.live_server import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")
EVIL_HOST = "evil.example"  # mapped to 127.0.0.1 in the browser only
DEMO_RUN = "01HM65JQM043J5BD14TQ8NBVDK"  # a DONE demo run

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

# The form's one field: `{"strategy_id":"x=","dataset_id":...,"strategy_id":"sma_crossover"}`.
FORM_NAME = '{"strategy_id":"x'
FORM_VALUE = (
    '","dataset_id":"AAPL-2023-1m","params":{},"seed":666,'
    '"slippage_fees":{"k_spread":0.1,"fees_bps":1},"strategy_id":"sma_crossover"}'
)
ATTACK = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<!-- text/plain sends `name=value`: the "=" lands in a key given twice, which a
     last-one-wins JSON parser would overlook, leaving a valid create. -->
<form id="form" method="POST" action="{base}/backtests" enctype="text/plain" target="sink">
<input name='{form_name}' value='{form_value}'>
</form>
<form id="cancel" method="POST" action="{base}/backtests/{run}/cancel" target="sink"></form>
<script>
const body = JSON.stringify({{dataset_id: "AAPL-2023-1m", strategy_id: "sma_crossover",
  params: {{}}, seed: 667, slippage_fees: {{k_spread: 0.1, fees_bps: 1}}}});
const outcomes = [];
async function attack() {{
  document.getElementById("form").submit();
  for (const [path, opts] of [
    ["/backtests", {{method: "POST", mode: "no-cors", credentials: "include", body}}],
    ["/backtests", {{method: "POST", mode: "no-cors", credentials: "include", body,
                    headers: {{"Content-Type": "text/plain"}}}}],
    ["/backtests/{run}/cancel", {{method: "POST", mode: "no-cors", credentials: "include"}}],
    ["/backtests", {{method: "POST", mode: "cors", credentials: "include", body,
                    headers: {{"Content-Type": "application/json"}}}}],
  ]) {{
    try {{ await fetch("{base}" + path, opts); outcomes.push("sent"); }}
    catch (e) {{ outcomes.push("blocked"); }}
  }}
  await new Promise(done => {{
    const ws = new WebSocket("{ws}/backtests/{run}/ws");
    ws.onopen = () => {{ outcomes.push("socket open"); ws.close(); done(); }};
    ws.onerror = () => {{ outcomes.push("socket refused"); done(); }};
  }});
  setTimeout(() => document.getElementById("cancel").submit(), 100);
  window.outcomes = outcomes;
  setTimeout(() => {{ window.done = true; }}, 1500);
}}
attack();
</script>
</body></html>
"""


def serve_page(html: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    """Serve `html` at / on a free loopback port, in a thread."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            payload = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture(scope="module", params=["required", "off"])
def service(request, tmp_path_factory) -> Iterator[tuple[LiveServer, Path, str]]:
    tmp = tmp_path_factory.mktemp(f"cross-site-{request.param}")
    manage(tmp, "migrate", "--no-input")
    manage(tmp, "load_demo")
    manage(
        tmp,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.create_superuser('victim', 'v@example.com', 'victim-password-1')",
    )
    with live_server("daphne", tmp, AUTH_MODE=request.param) as live:
        yield live, tmp, request.param


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                f"--host-resolver-rules=MAP {EVIL_HOST} 127.0.0.1",
            ],
        )
        yield browser
        browser.close()


def runs(tmp: Path) -> dict[str, str]:
    """Every run's status, read from the service's database."""
    with sqlite3.connect(tmp / "db.sqlite3") as db:
        return dict(db.execute("SELECT run_id, status FROM backtests_run"))


def log_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/backtests")
    page.fill("#id_username", "victim")
    page.fill("#id_password", "victim-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/backtests")


def test_a_page_of_another_site_creates_and_cancels_nothing(service, browser) -> None:
    live, tmp, mode = service
    base = live.http_url
    before = runs(tmp)
    queued = next(run_id for run_id, status in before.items() if status == "QUEUED")
    context = browser.new_context()
    page = context.new_page()
    log_in(page, base)  # the victim is logged in: staff, who may cancel any run
    ws_base = base.replace("http://", "ws://")
    evil, port = serve_page(
        ATTACK.format(base=base, ws=ws_base, run=queued, form_name=FORM_NAME, form_value=FORM_VALUE)
    )
    try:
        page.goto(f"http://{EVIL_HOST}:{port}/")
        page.wait_for_function("window.done === true", timeout=15_000)
        outcomes = page.evaluate("window.outcomes")
        time.sleep(0.5)  # the last form's request reaches the server
    finally:
        evil.shutdown()
        context.close()
    assert "socket refused" in outcomes and "socket open" not in outcomes
    assert outcomes[3] == "blocked"  # the CORS fetch: its preflight is refused
    assert runs(tmp) == before, mode  # nothing created, nothing cancelled


def test_the_pages_run_under_the_content_security_policy(service, browser) -> None:
    live, _, mode = service
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(f"{page.url}: {m.text}") if "Content Security" in m.text else None,
    )
    if mode == "required":
        log_in(page, live.http_url)
    for path in ("/accounts/login/", "/admin/", f"/backtests/{DEMO_RUN}/play"):
        response = page.goto(live.http_url + path)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
    context.close()
    assert refused == []
