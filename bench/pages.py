"""The web app's benchmark: the run list's server time with 100,000 runs, and how soon a
run with 10,000 trades shows its first chart in chromium.

    python -m bench.pages [--runs 100000] [--requests 200] [--loads 5]

1. The list page (`GET /`, 25 rows) through the whole Django stack in-process, as
   bench/catalog.py times the API, against the API's own `GET /backtests?limit=25` in the
   same run (taking turns, request by request). Target: page p50 <= 50 ms.
2. A real run of ~10,000 trades (sma_crossover 2/5 over a year of synthetic one-minute
   bars), served by daphne: chromium loads `/runs/<id>` and the time from navigation to the
   equity chart drawn is measured (median of --loads), beside the time to load `/healthz`
   in the same browser. Target: first chart <= 1,000 ms.

Results: bench/results/pages.json.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import results as bench_results
from bench.servers import UNLIMITED, free_port
from bin.serve import server_command

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
LIST_TARGET_MS = 50.0
CHART_TARGET_MS = 1000.0


def child_env(var_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return {
        **env,
        **UNLIMITED,
        "DJANGO_VAR_DIR": var_dir,
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--child", choices=["list", "seed-trades"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "list":
        asyncio.run(measure_list(args.runs, args.requests))
        return
    if args.child == "seed-trades":
        print(json.dumps(seed_trades()))
        return
    results = {}
    with tempfile.TemporaryDirectory() as var_dir:
        out = child(var_dir, "list", "--runs", str(args.runs), "--requests", str(args.requests))
        results["list"] = json.loads(out.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as var_dir:
        seeded = json.loads(child(var_dir, "seed-trades").strip().splitlines()[-1])
        results["chart"] = {**seeded, **measure_chart(var_dir, seeded["run_id"], args.loads)}
    report(results)


def child(var_dir: str, kind: str, *args: str) -> str:
    """Run one part in a process of its own, on its own database."""
    cmd = [sys.executable, "-m", "bench.pages", "--child", kind, *args]
    out = subprocess.run(cmd, cwd=ROOT, env=child_env(var_dir), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{kind}: failed\n{out.stderr[-3000:]}")
    return out.stdout


async def measure_list(n_runs: int, requests: int) -> None:
    """Seed the catalog, then time the list page against the API's list, taking turns."""
    import django
    from asgiref.sync import sync_to_async

    django.setup()
    from django.conf import settings
    from django.test import AsyncClient

    from bench.catalog import interleaved, seed_catalog

    settings.ALLOWED_HOSTS.append("testserver")
    await sync_to_async(seed_catalog)(n_runs)
    client = AsyncClient()

    def get(path: str, query: dict):
        async def call(i: int):
            response = await client.get(
                path,
                {**query, **({"page": 1 + i % 20} if path == "/" else {"offset": 25 * (i % 20)})},
            )
            assert response.status_code == 200, response.content[:300]

        return call

    times = await interleaved(
        requests,
        {
            "page": get("/", {}),
            "page_filtered": get("/", {"status": "DONE", "symbol": "AAPL"}),
            "api": get("/backtests", {"limit": 25}),
        },
    )
    print(json.dumps({name: statistics.median(t) for name, t in times.items()}))


def seed_trades() -> dict:
    """A DONE run of about 10,000 trades over a year of one-minute bars."""
    from datetime import date

    import django

    django.setup()
    from django.core.management import call_command

    from backtests.catalog.bars_import import store_bars
    from backtests.engine import synthetic
    from backtests.jobs.execute import execute
    from backtests.models import Run

    call_command("migrate", verbosity=0)
    series = synthetic.generate("AAPL", date(2023, 1, 1), date(2023, 12, 31), 130.0)
    dataset = store_bars("AAPL-2023-1m", series, "AAPL").dataset
    run = Run.objects.create(
        dataset=dataset,
        strategy_id="sma_crossover",
        params={"fast": 2, "slow": 5},
        seed=1,
        slippage_fees={"k_spread": 0.02, "fees_bps": 1},
        input_hash="bench-pages-10k-trades",
    )
    assert execute(run.run_id, "bench") == "DONE"
    run.refresh_from_db()
    return {"run_id": run.run_id, "trades": run.metrics.trades, "bars": len(series)}


def measure_chart(var_dir: str, run_id: str, loads: int) -> dict:
    """Median ms from navigation to the run page's equity chart drawn, and to /healthz."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    log = open(Path(var_dir) / "server.log", "w")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        server_command("daphne", "127.0.0.1", port),
        cwd=ROOT,
        env=child_env(var_dir),
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            charts, probes = [], []
            for n in range(loads + 1):  # the first warms the server's caches: not counted
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{base}/runs/{run_id}", wait_until="commit")
                page.wait_for_selector("#equity-chart[data-drawn]", timeout=30_000)
                drawn = page.evaluate("performance.now()")
                page.goto(f"{base}/healthz")
                probe = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
                if n:
                    charts.append(drawn)
                    probes.append(probe)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()
        log.close()
    return {"first_chart_ms": statistics.median(charts), "healthz_ms": statistics.median(probes)}


def report(results: dict) -> None:
    listed, chart = results["list"], results["chart"]
    failed = False
    ok = listed["page"] <= LIST_TARGET_MS and listed["page_filtered"] <= LIST_TARGET_MS
    failed |= not ok
    print(
        f"list page p50 {listed['page']:.2f} ms, filtered {listed['page_filtered']:.2f} ms; "
        f"the API's list {listed['api']:.2f} ms (x{listed['page'] / listed['api']:.2f}) "
        f"(target page <= {LIST_TARGET_MS:.0f} ms) {'ok' if ok else 'MISSED'}"
    )
    ok = chart["first_chart_ms"] <= CHART_TARGET_MS
    failed |= not ok
    print(
        f"run page of {chart['trades']:,} trades over {chart['bars']:,} bars: first chart "
        f"{chart['first_chart_ms']:.0f} ms after navigation (/healthz loads in "
        f"{chart['healthz_ms']:.0f} ms) (target <= {CHART_TARGET_MS:.0f} ms) "
        f"{'ok' if ok else 'MISSED'}"
    )
    print(f"results: {bench_results.write('pages', results)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
