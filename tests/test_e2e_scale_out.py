"""Scale-out on this machine's real services: two servers (daphne and uvicorn) and two
workers on PostgreSQL and Redis, sharing one data and artifacts directory.

Needs PostgreSQL at 127.0.0.1:5432 (trust auth) and Redis at 127.0.0.1:6379, as CI has
them; on a machine without them the test says so and is skipped.
"""

import json
import re
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest
from websockets.sync.client import connect

from bench.servers import UNLIMITED
from tests.live_jobs import api, live_worker, manage, wait_for_status
from tests.live_server import live_server

pytestmark = pytest.mark.e2e

DATABASE = "backtest_scale_out"
POSTGRES = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
REDIS = "redis://127.0.0.1:6379/5"
RUNS = 200
WATCHED = 20
BODY = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "sma_crossover",
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
}


def reachable(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def fresh_services() -> None:
    """An empty database and an empty Redis database for this test."""
    import psycopg
    import redis

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {DATABASE}")
    redis.Redis.from_url(REDIS).flushdb()


@pytest.mark.skipif(
    not (reachable(5432) and reachable(6379)),
    reason="needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (CI has both)",
)
def test_two_servers_two_workers_postgres_and_redis(tmp_path: Path) -> None:
    fresh_services()
    env = {
        "DATABASE_URL": POSTGRES,
        "REDIS_URL": REDIS,
        "JOB_LEASE_SECONDS": "1",
        "DATABASE_POOL_SIZE": "4",
        **UNLIMITED,  # many runs from one address
    }
    manage(tmp_path, "migrate", "--no-input", **env)
    manage(tmp_path, "load_demo", **env)
    with (
        live_server("daphne", tmp_path, name="a", **env) as a,
        live_server("uvicorn", tmp_path, name="b", **env) as b,
        live_worker(tmp_path, name="w1", **env) as w1,
        live_worker(tmp_path, name="w2", **env) as w2,
    ):
        for server in (a, b):
            status, ready = api(server.http_url, "GET", "/readyz")
            assert status == 200, ready  # the database and Redis both answer
        seen: dict[str, list[str]] = {}
        watchers = []
        run_ids = []

        def watch(server, run_id: str) -> None:
            """A viewer on the other server than the one that took the POST."""
            statuses = seen.setdefault(run_id, [])
            with connect(f"{server.ws_url}/backtests/{run_id}/ws", open_timeout=10) as ws:
                while not statuses or statuses[-1] not in {"DONE", "ERROR", "CANCELLED"}:
                    frame = json.loads(ws.recv(timeout=60))
                    if frame["t"] == "status":
                        statuses.append(frame["status"])

        for n in range(RUNS):
            posted_to, other = (a, b) if n % 2 == 0 else (b, a)
            body = {**BODY, "seed": n, "params": {"fast": 5 + n % 10, "slow": 30}}
            status, created = api(posted_to.http_url, "POST", "/backtests", body)
            assert status == 202, created
            run_ids.append(created["run_id"])
            if n < WATCHED:
                watcher = threading.Thread(target=watch, args=(other, created["run_id"]))
                watcher.start()
                watchers.append(watcher)
            if n == RUNS // 2:
                w1.kill()  # mid-batch: whatever it was computing is requeued by w2
        for run_id in run_ids:
            wait_for_status(a.http_url, run_id, {"DONE"}, timeout=120)
        for watcher in watchers:
            watcher.join(60)
        logs = w1.log_path.read_text() + w2.log_path.read_text()
        executions = Counter(re.findall(r"engine run started run_id=(\w+)", logs))
        retried = []
        for run_id in run_ids:
            run = api(b.http_url, "GET", f"/backtests/{run_id}")[1]
            assert run["status"] == "DONE"
            if run["attempts"] == 1:
                assert executions[run_id] == 1  # computed once
            else:
                retried.append((run_id, run["attempts"], executions[run_id]))
        # The killed worker held at most one run: claimed a second time by w2, and computed
        # once or twice (once if w1 died between its claim and the engine's start).
        assert len(retried) <= 1
        for _, attempts, computed in retried:
            assert attempts == 2 and computed in (1, 2)
        for run_id in run_ids[:WATCHED]:
            assert seen[run_id][-1] == "DONE", seen[run_id]
        assert "Traceback" not in w2.log_path.read_text() + a.log() + b.log()
