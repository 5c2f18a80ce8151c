"""Queued runs run: real servers, real worker processes, the embedded defaults (SQLite, no
Redis: the server polls the database for the statuses of runs that sockets wait on)."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import connect

from bench.servers import UNLIMITED
from tests.live_jobs import api, live_worker, manage, wait_for_status
from tests.live_server import ROOT, LiveServer, live_server, service_env

pytestmark = pytest.mark.e2e

# Load from one address: the per-client quotas (tested in test_quotas.py) are off.
FAST = {"RUN_STATUS_POLL_SECONDS": "0.1", "JOB_LEASE_SECONDS": "1", **UNLIMITED}
BODY = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "sma_crossover",
    "params": {"fast": 20, "slow": 50},
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
}
TEN_YEARS = (
    "from datetime import date;"
    "from backtests.catalog.bars_import import store_bars;"
    "from backtests.engine import synthetic;"
    "store_bars('BIG-10y-1m', synthetic.generate('BIG', date(2014, 1, 1), date(2023, 12, 31)),"
    " 'BIG')"
)
_seeds = iter(range(1000, 10**6))
ORPHAN = (
    "from backtests.models import Run;"
    "print(Run.objects.create(dataset_id='AAPL-2023-1m', strategy_id='sma_crossover',"
    " params={{'fast': 20, 'slow': 50}}, seed={seed}, input_hash='orphan-{seed}',"
    " slippage_fees={{'k_spread': 0.5, 'fees_bps': 1}}).run_id)"
)


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    """A migrated SQLite database with the demo, and a ten-year dataset for long runs."""
    tmp = tmp_path_factory.mktemp("jobs")
    manage(tmp, "migrate", "--no-input")
    manage(tmp, "load_demo")
    manage(tmp, "shell", "-c", TEN_YEARS)
    return tmp


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, state: Path) -> Iterator[LiveServer]:
    with live_server(request.param, state, **FAST) as live:
        yield live


def post(server: LiveServer, **changes) -> str:
    status, body = api(
        server.http_url, "POST", "/backtests", {**BODY, "seed": next(_seeds), **changes}
    )
    assert status == 202, body
    return body["run_id"]


def engine_runs(log_path: Path, run_id: str) -> int:
    return log_path.read_text().count(f"engine run started run_id={run_id}")


def test_a_post_reaches_done_and_a_waiting_socket_sees_it(server: LiveServer, state: Path) -> None:
    with live_worker(state, **FAST) as worker:
        run_id = post(server)
        seen = []
        with connect(f"{server.ws_url}/backtests/{run_id}/ws", open_timeout=10) as ws:
            while not seen or seen[-1] not in {"DONE", "ERROR", "CANCELLED"}:
                frame = json.loads(ws.recv(timeout=30))
                if frame["t"] == "status":
                    seen.append(frame["status"])
        assert seen[-1] == "DONE"
        assert set(seen) <= {"QUEUED", "RUNNING", "DONE"}
        run = wait_for_status(server.http_url, run_id, {"DONE"})
        assert run["started_at"] <= run["finished_at"] and run["duration_ms"] >= 0
        assert run["attempts"] == 1 and run["metrics"]["total_return"] is not None
        assert engine_runs(worker.log_path, run_id) == 1


def test_the_demo_queued_runs_run_when_a_worker_runs(server: LiveServer, state: Path) -> None:
    with live_worker(state, **FAST):
        deadline = time.monotonic() + 60
        while api(server.http_url, "GET", "/backtests?status=QUEUED")[1]["total"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    statuses = {
        r["status"] for r in api(server.http_url, "GET", "/backtests?limit=500")[1]["items"]
    }
    assert statuses <= {"DONE", "ERROR", "CANCELLED"}


def test_a_cancel_stops_a_running_run(server: LiveServer, state: Path) -> None:
    with live_worker(state, **FAST):
        run_id = post(server, dataset_id="BIG-10y-1m", strategy_id="breakout", params={})
        wait_for_status(server.http_url, run_id, {"RUNNING"})
        # The ten-year breakout takes about 0.7 s: the cancel arrives while it computes.
        status, body = api(server.http_url, "POST", f"/backtests/{run_id}/cancel")
        assert (status, body["status"]) == (202, "RUNNING")
        run = wait_for_status(server.http_url, run_id, {"CANCELLED", "DONE"})
        assert run["status"] == "CANCELLED" and run["metrics"] is None
        assert run["artifacts"]["equity"] is None


def test_a_worker_killed_mid_run_leaves_nothing_stuck(server: LiveServer, state: Path) -> None:
    with live_worker(state, name="doomed", **FAST) as doomed:
        run_id = post(server, dataset_id="BIG-10y-1m", strategy_id="breakout", params={})
        wait_for_status(server.http_url, run_id, {"RUNNING"}, timeout=30)
        doomed.kill()
        doomed.wait()
    with live_worker(state, name="rescuer", **FAST) as rescuer:
        run = wait_for_status(server.http_url, run_id, {"DONE"}, timeout=60)
        assert run["attempts"] == 2
        assert engine_runs(rescuer.log_path, run_id) == 1
        assert "lost its worker" in rescuer.log_path.read_text()


def test_a_server_killed_at_the_enqueue_point_leaves_no_run_stuck(state: Path) -> None:
    body = {**BODY, "seed": next(_seeds)}
    with live_server("daphne", state, name="doomed", FAULT_POINTS="enqueue", **FAST) as doomed:
        with pytest.raises(OSError):  # the connection dies with the server (kill -9)
            api(doomed.http_url, "POST", "/backtests", body)
        assert doomed.process.wait(10) == -signal.SIGKILL
    with live_server("daphne", state, name="restarted", **FAST) as server:
        # The run's row died with its task: the same body makes a new run, which runs.
        status, created = api(server.http_url, "POST", "/backtests", body)
        assert (status, created["status"]) == (202, "QUEUED")
        with live_worker(state, **FAST):
            wait_for_status(server.http_url, created["run_id"], {"DONE"}, timeout=60)


def test_a_worker_gives_a_task_to_a_queued_run_left_without_one(
    server: LiveServer, state: Path
) -> None:
    # As a server killed between the commit and the enqueue left runs before #17.
    run_id = manage(state, "shell", "-c", ORPHAN.format(seed=next(_seeds))).split()[-1]
    assert api(server.http_url, "GET", f"/backtests/{run_id}")[1]["status"] == "QUEUED"
    with live_worker(state, **FAST) as worker:
        run = wait_for_status(server.http_url, run_id, {"DONE"}, timeout=60)
        assert run["attempts"] == 1
        assert f"run {run_id} was QUEUED without a task" in worker.log_path.read_text()


def test_sigterm_lets_the_worker_finish_its_run_then_exit(server: LiveServer, state: Path) -> None:
    with live_worker(state, **FAST) as worker:
        run_id = post(server, dataset_id="BIG-10y-1m", strategy_id="breakout", params={})
        wait_for_status(server.http_url, run_id, {"RUNNING"})
        started = time.monotonic()
        worker.terminate()
        assert worker.wait(10) == 0
        assert time.monotonic() - started < 10
    assert api(server.http_url, "GET", f"/backtests/{run_id}")[1]["status"] == "DONE"


def test_concurrent_posts_while_two_workers_write_never_lock_sqlite(
    server: LiveServer, state: Path
) -> None:
    run_ids: list[str] = []
    with live_worker(state, name="w1", **FAST) as w1, live_worker(state, name="w2", **FAST) as w2:

        def poster() -> None:
            for _ in range(8):
                run_ids.append(post(server, params={"fast": 5, "slow": 20}))

        threads = [threading.Thread(target=poster) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for run_id in run_ids:
            wait_for_status(server.http_url, run_id, {"DONE"}, timeout=120)
        logs = server.log() + w1.log_path.read_text() + w2.log_path.read_text()
    assert len(run_ids) == 48
    assert "database is locked" not in logs
    assert "Traceback" not in logs


@contextmanager
def serving(state: Path, command: list[str], port: int) -> Iterator[subprocess.Popen]:
    """`command` (serve.py, or make start-backend) until /healthz answers; killed at the end."""
    log = (state / "serve.log").open("w")
    serve = subprocess.Popen(
        command, cwd=ROOT, env=service_env(state, **FAST), stdout=log, stderr=log
    )
    serve.log_path = state / "serve.log"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if api(f"http://127.0.0.1:{port}", "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline and serve.poll() is None
                time.sleep(0.1)
        yield serve
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        log.close()


def test_make_start_backend_runs_a_server_and_a_worker_and_stops_both(state: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(state, [sys.executable, "bin/serve.py", "--port", str(port)], port) as serve:
        children = child_pids(serve.pid)
        assert len(children) == 2  # the server and the worker
        status, body = api(base, "POST", "/backtests", {**BODY, "seed": next(_seeds)})
        assert status == 202
        wait_for_status(base, body["run_id"], {"DONE"})
        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0
        assert time.monotonic() - started < 10
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists() and not zombie(pid)]


def workers(serve: subprocess.Popen) -> list[int]:
    return [pid for pid in child_pids(serve.pid) if b"run_worker" in cmdline(pid)]


def worker_pid(serve: subprocess.Popen) -> int:
    (pid,) = workers(serve)
    return pid


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_worker_that_dies_is_restarted_and_the_server_stays_up(state: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(state, [sys.executable, "bin/serve.py", "--port", str(port)], port) as serve:
        for _ in range(2):  # twice: the second restart waits longer (1 s, then 2 s)
            doomed = worker_pid(serve)
            os.kill(doomed, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while workers(serve) in ([], [doomed]):
                assert api(base, "GET", "/healthz")[0] == 200  # served all along
                assert time.monotonic() < deadline, "the worker was not restarted"
                time.sleep(0.1)
            assert serve.poll() is None
        status, body = api(base, "POST", "/backtests", {**BODY, "seed": next(_seeds)})
        assert status == 202
        wait_for_status(base, body["run_id"], {"DONE"}, timeout=60)  # the new worker runs it
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(15) == 0
    log = serve.log_path.read_text()
    assert f"the worker exited (code {-signal.SIGKILL}); restarting it in 1 s" in log
    assert "restarting it in 2 s" in log and "worker restarted (pid " in log


def test_make_start_backend_with_uvicorn_ends_cleanly_on_sigterm(state: Path) -> None:
    port = free_port()
    command = ["make", "--no-print-directory", "start-backend", "SERVER=uvicorn", f"PORT={port}"]
    with serving(state, command, port) as make:
        (serve,) = child_pids(make.pid)  # the recipe execs serve.py
        os.kill(serve, signal.SIGTERM)
        assert make.wait(15) == 0  # it was make's "Error 241": uvicorn re-raises SIGTERM
    assert "Error" not in make.log_path.read_text()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry))
    return children


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
