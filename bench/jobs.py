"""Jobs benchmark: how fast a POST becomes DONE, and how many runs a second two workers do.

    python -m bench.jobs [--latency-runs 30] [--batch 200] [--db sqlite|postgres|both]

1. Latency, on the embedded default (SQLite, one worker): POST a run of SMA(20, 50) over
   one year of one-minute bars, then poll GET /backtests/<id> every 5 ms until DONE;
   one run at a time. Median and p95.
2. Throughput: `--batch` runs are POSTed with no worker running, then two workers start;
   runs per second from the workers' start to the last run's end, on SQLite and on
   PostgreSQL (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/backtest_jobs).
The server is uvicorn. Results: bench/results/jobs.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from bench import results as bench_results
from bench.catalog import recreate_postgres
from bench.servers import UNLIMITED, free_port
from bin.serve import server_command

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/backtest_jobs"
TARGETS = {"p50_s": 1.0, "p95_s": 2.0, "sqlite_runs_per_s": 5, "postgres_runs_per_s": 10}
BODY = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "sma_crossover",
    "params": {"fast": 20, "slow": 50},
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
}


def env_for(var_dir: str, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(DJANGO_VAR_DIR=var_dir, LOG_FORMAT="json", PYTHONUNBUFFERED="1", **UNLIMITED)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
    )


def spawn(env: dict, log: Path, *cmd: str) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=out, stderr=out)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def call(base: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def server(env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = spawn(env, log, *server_command("uvicorn", "127.0.0.1", port), "--no-access-log")
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base)
    return process, base


def worker(env: dict, log: Path) -> subprocess.Popen:
    return spawn(env, log, sys.executable, "manage.py", "run_worker")


def prepared(var_dir: str, database_url: str | None) -> dict:
    """A migrated database with the demo's data (one year of bars), its queue drained."""
    env = env_for(var_dir, database_url)
    manage(env, "migrate", "--no-input")
    manage(env, "load_demo")
    # The demo queues three runs: run them now, so that the figures are ours alone.
    manage(env, "shell", "-c", DRAIN)
    return env


DRAIN = (
    "from backtests.jobs.execute import execute;"
    "from backtests.models import Run;"
    "[execute(r) for r in Run.objects.filter(status='QUEUED').values_list('run_id', flat=True)]"
)


def latency(runs: int) -> dict:
    """POST -> DONE, one run at a time, SQLite and one worker."""
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as var_dir, ExitStack() as stack:
        env = prepared(var_dir, None)
        logs = Path(var_dir)
        srv, base = server(env, logs / "server.log")
        stack.callback(stop, srv)
        stack.callback(stop, worker(env, logs / "worker.log"))
        time.sleep(1)  # the worker's start-up
        times = []
        for seed in range(runs):
            started = time.perf_counter()
            run_id = call(base, "POST", "/backtests", {**BODY, "seed": seed})["run_id"]
            while call(base, "GET", f"/backtests/{run_id}")["status"] != "DONE":
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
    return {
        "runs": runs,
        "p50_s": statistics.median(times),
        "p95_s": statistics.quantiles(times, n=20)[18],
        "max_s": max(times),
    }


def throughput(batch: int, database_url: str | None) -> dict:
    """`batch` runs queued, then two workers: runs a second until the last is DONE."""
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as var_dir, ExitStack() as stack:
        env = prepared(var_dir, database_url)
        logs = Path(var_dir)
        srv, base = server(env, logs / "server.log")
        stack.callback(stop, srv)
        run_ids = [
            call(base, "POST", "/backtests", {**BODY, "seed": 10_000 + n})["run_id"]
            for n in range(batch)
        ]
        started = time.perf_counter()
        for n in range(2):
            stack.callback(stop, worker(env, logs / f"worker-{n}.log"))
        remaining = set(run_ids)
        while remaining:
            page = call(base, "GET", "/backtests?status=DONE&limit=500")
            remaining -= {item["run_id"] for item in page["items"]}
            if remaining:
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
    return {"runs": batch, "seconds": elapsed, "runs_per_s": batch / elapsed}


def main() -> None:
    """Measure, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    figures: dict = {"latency": latency(args.latency_runs)}
    lat = figures["latency"]
    print(
        f"POST -> DONE, SMA(20,50) over one year, SQLite, one worker ({lat['runs']} runs): "
        f"median {lat['p50_s']:.3f} s (target <= {TARGETS['p50_s']}), "
        f"p95 {lat['p95_s']:.3f} s (target <= {TARGETS['p95_s']})",
        flush=True,
    )
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for db in databases:
        url = None
        if db == "postgres":
            url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
            if not recreate_postgres(url):
                print(f"postgres: skipped, no server at {url}")
                continue
        result = throughput(args.batch, url)
        figures[f"{db}_throughput"] = result
        target = TARGETS[f"{db}_runs_per_s"]
        verdict = "ok" if result["runs_per_s"] >= target else "MISSED"
        print(
            f"{result['runs']} queued runs, two workers, {db}: {result['seconds']:.1f} s, "
            f"{result['runs_per_s']:.1f} runs/s (target >= {target}) {verdict}",
            flush=True,
        )
    print(f"results: {bench_results.write('jobs', figures)}")


if __name__ == "__main__":
    main()
