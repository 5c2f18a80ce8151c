"""Catalog benchmark: REST latency and query counts with 100,000 runs in the catalog.

Usage: python -m bench.catalog [--db sqlite|postgres|both] [--runs 100000] [--requests 300]

Requests go through the whole Django stack in-process (AsyncClient: middleware, URL
routing, the async views and the async ORM), so the figures are the server's own time
per request, without a network or an HTTP parser. PostgreSQL is reached at
BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/backtest_bench), a
database this script creates and fills; SQLite is a fresh file in a temporary folder.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench import results as bench_results
from bench.servers import UNLIMITED

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/backtest_bench"
TARGETS_MS = {"list": (10, 50), "get": (10, 50), "create": (20, None)}
# GET /backtests with a Bearer token (AUTH_MODE=required) against no auth, p50: at most 10%
# slower. "staff": the token's cost alone; "user": with the ownership filter too.
AUTH_TARGET_RATIO = 1.10
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "XOM", "SPY"]
STRATEGIES = [f"strategy_{n}" for n in range(12)]
STATUSES = ["QUEUED", "RUNNING", "DONE", "DONE", "DONE", "ERROR", "CANCELLED"]


def main() -> None:
    """Run the benchmark on each database in a child process of its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run this many job workers, computing real runs, while measuring",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(measure(args.runs, args.requests, args.workers))
        return
    results = []
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        with tempfile.TemporaryDirectory() as var_dir:
            env = {
                **os.environ,
                **UNLIMITED,  # its 300 creates come from one address, in a few seconds
                "DJANGO_VAR_DIR": var_dir,
                "DJANGO_SETTINGS_MODULE": "project.settings",
            }
            env.pop("DATABASE_URL", None)
            if db == "postgres":
                url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
                if not recreate_postgres(url):
                    print(f"postgres: skipped, no server at {url}")
                    continue
                env["DATABASE_URL"] = url
            cmd = [
                sys.executable,
                "-m",
                "bench.catalog",
                "--child",
                "--runs",
                str(args.runs),
                "--requests",
                str(args.requests),
                "--workers",
                str(args.workers),
            ]
            out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{db}: benchmark failed\n{out.stderr}")
            results.append({"db": db, **json.loads(out.stdout.strip().splitlines()[-1])})
    report(results)


def recreate_postgres(url: str) -> bool:
    """Drop and create the benchmark database; False when no server answers."""
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    try:
        with psycopg.connect(f"{base}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError:
        return False
    return True


def seed_catalog(n_runs: int) -> None:
    """Migrate, then fill the catalog: 3 datasets per symbol, n_runs runs, metrics for DONE."""
    from django.core.management import call_command
    from django.db import connection

    from backtests.models import Dataset, Run, RunMetrics

    call_command("migrate", verbosity=0)
    rng = random.Random(7)
    datasets = [
        Dataset(
            dataset_id=f"{s}-{y}-1m",
            symbol=s,
            from_date=date(y, 1, 1),
            to_date=date(y, 12, 31),
            status="READY",
            products=["TRADES"],
        )
        for s in SYMBOLS
        for y in (2022, 2023, 2024)
    ]
    Dataset.objects.bulk_create(datasets)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    held_until = datetime.now(UTC) + timedelta(days=1)
    batch: list[Run] = []
    metrics: list[RunMetrics] = []
    for i in range(n_runs):
        status = rng.choice(STATUSES)
        run = Run(
            run_id=f"{i:026d}",
            dataset=rng.choice(datasets),
            strategy_id=rng.choice(STRATEGIES),
            params={"fast": rng.randint(5, 50), "slow": rng.randint(60, 200)},
            seed=i,
            slippage_fees={"k_spread": 0.5, "fees_bps": 1},
            status=status,
            created_at=start + timedelta(seconds=90 * i),
            input_hash=f"{i:064x}",
        )
        if status == "RUNNING":  # held by a worker, as a RUNNING run is: not swept
            run.worker_id, run.lease_expires_at = "bench-seed", held_until
        batch.append(run)
        if status == "DONE":
            values = {name: rng.uniform(-1, 1) for name in RunMetrics.FIELDS}
            values["hit_rate"] = rng.random()
            metrics.append(RunMetrics(run=run, **values))
        if len(batch) == 5000:
            Run.objects.bulk_create(batch)
            RunMetrics.objects.bulk_create(metrics)
            batch, metrics = [], []
    Run.objects.bulk_create(batch)
    RunMetrics.objects.bulk_create(metrics)
    # Planner statistics and PostgreSQL's visibility map, as a database in service has
    # them (autovacuum, SQLite's optimize): a freshly bulk-loaded table has neither.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def query_counts() -> dict[str, int]:
    """Queries per request, counted on one request of each kind (sync client, same thread)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts = {}
    for name, call in (
        (
            "list",
            lambda: client.get("/backtests", {"symbol": "AAPL", "status": "DONE", "limit": 50}),
        ),
        ("get", lambda: client.get(f"/backtests/{50_000 % 1000:026d}")),
        (
            "create",
            lambda: client.post("/backtests", create_body(-1), content_type="application/json"),
        ),
    ):
        with CaptureQueriesContext(connection) as queries:
            assert call().status_code in (200, 202)
        counts[name] = len(queries)
    return counts


def create_body(seed: int) -> str:
    return json.dumps(
        {
            "dataset_id": "AAPL-2023-1m",
            "strategy_id": "sma_crossover",
            "params": {"fast": 20, "slow": 50},
            "seed": 10**9 + seed,
            "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
        }
    )


async def interleaved(requests: int, calls: dict) -> dict[str, list[float]]:
    """Milliseconds per call of each variant, the variants taking turns request by request
    (so that the machine's drift hits them alike), after 20 warm-up rounds."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(-20, requests):
        for name, call in calls.items():
            t0 = time.perf_counter()
            await call(i)
            if i >= 0:
                times[name].append((time.perf_counter() - t0) * 1000)
    return times


def make_tokens() -> dict[str, str]:
    """A staff user's token (who sees every run) and a plain user's, who owns a tenth of
    the runs (ids ending in 7) and sees those."""
    from django.contrib.auth import get_user_model

    from accounts import tokens
    from backtests.models import Run

    users = get_user_model()
    staff = users.objects.create_user("bench-staff", is_staff=True)
    plain = users.objects.create_user("bench-user")
    Run.objects.filter(run_id__endswith="7").update(owner=plain)
    return {"staff": tokens.create(staff).token, "user": tokens.create(plain).token}


async def timed(requests: int, call) -> list[float]:
    """Milliseconds per call, after 20 warm-up calls."""
    for i in range(20):
        await call(-1 - i)
    times = []
    for i in range(requests):
        t0 = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def queue_real_runs(count: int) -> None:
    """Give AAPL-2023-1m a year of synthetic bars and queue `count` runs over it."""
    from backtests.catalog.bars_import import store_bars
    from backtests.engine import synthetic
    from backtests.jobs import lifecycle
    from backtests.models import Run

    series = synthetic.generate("AAPL", date(2023, 1, 1), date(2023, 12, 31), 130.0)
    store_bars("AAPL-2023-1m", series, "AAPL")
    for n in range(count):
        run = Run.objects.create(
            dataset_id="AAPL-2023-1m",
            strategy_id="sma_crossover",
            params={"fast": 5 + n % 40, "slow": 60},
            seed=n,
            slippage_fees={"k_spread": 0.5, "fees_bps": 1},
            input_hash=f"work{n:060x}",
        )
        lifecycle.enqueue(run.run_id)


def start_workers(count: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def done_work() -> int:
    from backtests.models import Run

    return Run.objects.filter(input_hash__startswith="work", status="DONE").count()


async def measure(n_runs: int, requests: int, workers: int = 0) -> None:
    """Seed, then time list, get and create; print one JSON line."""
    import django
    from asgiref.sync import sync_to_async

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS.append("testserver")  # the test clients' Host
    t0 = time.perf_counter()
    await sync_to_async(seed_catalog)(n_runs)
    seeded_s = time.perf_counter() - t0
    counts = await sync_to_async(query_counts)()
    from django.test import AsyncClient

    client = AsyncClient()
    rng = random.Random(11)
    filters = [
        {"symbol": "AAPL", "status": "DONE"},
        {"strategy_id": "strategy_3"},
        {"symbol": "MSFT", "from": "2023-01-01", "to": "2023-12-31"},
        {"status": "QUEUED", "order": "created_at"},
        {},
    ]

    async def list_page(i: int):
        query = {**filters[i % len(filters)], "limit": 50, "offset": rng.randrange(0, 500)}
        response = await client.get("/backtests", query)
        assert response.status_code == 200, response.content

    async def get_one(i: int):
        response = await client.get(f"/backtests/{rng.randrange(n_runs):026d}")
        assert response.status_code == 200, response.content

    async def create(i: int):
        response = await client.post("/backtests", create_body(i), content_type="application/json")
        assert response.status_code in (200, 202), response.content

    bearer = await sync_to_async(make_tokens)()

    def list_as(who: str | None):
        """GET /backtests as `who` (a token, AUTH_MODE=required) or anonymously (off)."""
        queries = random.Random(12)  # every variant gets the same pages
        headers = {} if who is None else {"Authorization": f"Bearer {bearer[who]}"}

        async def call(i: int):
            settings.AUTH_MODE = "off" if who is None else "required"
            query = {**filters[i % len(filters)], "limit": 50, "offset": queries.randrange(500)}
            response = await client.get("/backtests", query, headers=headers)
            assert response.status_code == 200, response.content

        return call

    auth_times = await interleaved(
        requests, {"none": list_as(None), "staff": list_as("staff"), "user": list_as("user")}
    )
    settings.AUTH_MODE = "off"
    if os.environ.get("BENCH_PER_FILTER"):
        for index, query in enumerate(filters):
            times = await timed(100, lambda i, index=index: list_page(index))
            print(f"# list {query}: p50 {statistics.median(times):.2f} ms", file=sys.stderr)
    processes = []
    if workers:
        await sync_to_async(queue_real_runs)(2_000)  # more than they finish meanwhile
        processes = start_workers(workers)
        await asyncio.sleep(3)  # measure while they compute, not while they start
    figures = {"workers": workers}
    figures["auth"] = {name: statistics.median(times) for name, times in auth_times.items()}
    for name, call in (("list", list_page), ("get", get_one), ("create", create)):
        times = await timed(requests, call)
        q = statistics.quantiles(times, n=100)
        figures[name] = {
            "p50_ms": statistics.median(times),
            "p99_ms": q[98],
            "queries": counts[name],
        }
    if processes:
        figures["runs_done_by_workers_meanwhile"] = await sync_to_async(done_work)()
        for process in processes:
            process.terminate()
            process.wait()
    print(json.dumps({"runs": n_runs, "requests": requests, "seed_s": seeded_s, **figures}))


def report(results: list[dict]) -> None:
    """Print the table, marking figures that miss their targets."""
    print(f"{'db':9} {'request':8} {'p50 ms':>8} {'p99 ms':>8} {'queries':>8}  target")
    failed = False
    for result in results:
        for name, (p50_target, p99_target) in TARGETS_MS.items():
            f = result[name]
            ok = f["p50_ms"] < p50_target and (p99_target is None or f["p99_ms"] < p99_target)
            failed |= not ok
            target = f"p50<{p50_target}" + (f" p99<{p99_target}" if p99_target else "")
            mark = "ok" if ok else "MISSED"
            figures = f"{f['p50_ms']:8.2f} {f['p99_ms']:8.2f} {f['queries']:8d}"
            print(f"{result['db']:9} {name:8} {figures}  {target} {mark}")
        print(
            f"{result['db']:9} ({result['runs']:,} runs, {result['requests']} requests per kind,"
            f" seeded in {result['seed_s']:.1f}s)"
        )
        auth = result["auth"]
        for who in ("staff", "user"):
            ratio = auth[who] / auth["none"]
            ok = ratio <= AUTH_TARGET_RATIO
            failed |= not ok
            print(
                f"{result['db']:9} list, {who} token: p50 {auth[who]:.2f} ms against "
                f"{auth['none']:.2f} ms without auth: x{ratio:.3f} "
                f"(target <= x{AUTH_TARGET_RATIO}) {'ok' if ok else 'MISSED'}"
            )
        if result.get("workers"):
            print(
                f"{result['db']:9} measured while {result['workers']} workers computed runs: "
                f"{result['runs_done_by_workers_meanwhile']} finished meanwhile"
            )
    print(f"results: {bench_results.write('catalog', results)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
