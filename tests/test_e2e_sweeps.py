"""A sweep on this machine's real services: a server and two workers on PostgreSQL, one
worker killed (SIGKILL) while it holds a chunk; every variant is recorded exactly once and
the sweep ends DONE. Then the best variant is promoted and played like any run.

Needs PostgreSQL at 127.0.0.1:5432 (trust auth), as CI has it; skipped without it.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from bench.servers import UNLIMITED
from tests.live_jobs import api, live_worker, manage, wait_for_status
from tests.live_server import live_server
from tests.test_e2e_scale_out import reachable

pytestmark = pytest.mark.e2e

DATABASE = "backtest_e2e_sweeps"
POSTGRES = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
BODY = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "sma_crossover",
    "grid": {
        "fast": {"from": 5, "to": 24, "step": 1},
        "slow": {"from": 110, "to": 600, "step": 10},
    },
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
}
VARIANTS = 20 * 50


def fresh_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {DATABASE}")


def chunks_held_by(pid: int) -> int:
    """How many chunks the worker with this process id holds now."""
    import psycopg

    with psycopg.connect(POSTGRES.replace("postgres://", "postgresql://")) as db:
        row = db.execute(
            "SELECT count(*) FROM backtests_sweepchunk WHERE status = 'RUNNING' "
            "AND worker_id LIKE %s",
            (f"%:{pid}",),
        ).fetchone()
    return row[0]


@pytest.mark.skipif(not reachable(5432), reason="needs PostgreSQL on 127.0.0.1:5432 (CI has it)")
def test_two_workers_one_killed_mid_sweep_every_variant_once(tmp_path: Path) -> None:
    fresh_database()
    env = {
        "DATABASE_URL": POSTGRES,
        "JOB_LEASE_SECONDS": "1",
        "SWEEP_CHUNK_VARIANTS": "50",
        "DATABASE_POOL_SIZE": "4",
        **UNLIMITED,
    }
    manage(tmp_path, "migrate", "--no-input", **env)
    manage(tmp_path, "load_demo", **env)
    with (
        live_server("uvicorn", tmp_path, name="server", **env) as server,
        live_worker(tmp_path, name="w1", **env) as w1,
        live_worker(tmp_path, name="w2", **env) as w2,
    ):
        status, created = api(server.http_url, "POST", "/sweeps", BODY)
        assert status == 202 and created["total"] == VARIANTS, created
        sweep_id = created["sweep_id"]
        deadline = time.monotonic() + 60
        while chunks_held_by(w1.pid) == 0:  # kill it while it computes a chunk
            assert time.monotonic() < deadline, "w1 never took a chunk"
            time.sleep(0.01)
        os.kill(w1.pid, signal.SIGKILL)
        w1.wait()
        deadline = time.monotonic() + 240
        while True:
            detail = api(server.http_url, "GET", f"/sweeps/{sweep_id}")[1]
            if detail["status"] not in ("QUEUED", "RUNNING"):
                break
            assert time.monotonic() < deadline, detail
            time.sleep(0.2)
        assert detail["status"] == "DONE", detail
        assert (detail["done"], detail["total"], detail["skipped"]) == (VARIANTS, VARIANTS, 0)
        seen = []
        for offset in range(0, VARIANTS, 500):
            page = api(
                server.http_url, "GET", f"/sweeps/{sweep_id}/results?limit=500&offset={offset}"
            )[1]
            seen += [item["variant"] for item in page["items"]]
        assert sorted(seen) == list(range(VARIANTS))  # every variant, exactly once
        assert "lost its worker" in w2.log_path.read_text()  # its chunk was taken again

        best = detail["best"]
        status, promoted = api(
            server.http_url, "POST", f"/sweeps/{sweep_id}/promote", {"params": best["params"]}
        )
        assert status == 202, promoted
        run = wait_for_status(server.http_url, promoted["run_id"], {"DONE"}, timeout=60)
        assert run["metrics"]["sharpe"] == best["metrics"]["sharpe"]
        status, _ = api(server.http_url, "GET", f"/backtests/{promoted['run_id']}/equity?max=10")
        assert status == 200
        assert "Traceback" not in w2.log_path.read_text() + server.log()
