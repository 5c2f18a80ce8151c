"""Sweeps benchmark: 10,000 SMA variants over 100,000 one-minute bars on two workers.

    python -m bench.sweeps [--fast 100] [--slow 100] [--bars 100000] [--workers 2]
                           [--db sqlite|postgres] [--peer-variants 24] [--no-peer]

1. The engine's own throughput, in this process, with no queue: four chunks of the grid
   (SWEEP_CHUNK_VARIANTS contiguous variants each, spread over it), each computed as a
   worker computes a chunk (sweep.evaluate, indicator work shared within the chunk).
2. The same grid as a sweep: POST /sweeps to a server (uvicorn), two workers already
   started; the time from the POST to DONE, every variant's result counted.
   The queue's overhead is that time over the engine's: variants / (workers x the
   engine's variants per second), minus one (target: at most 20%); target: <= 60 s.
3. A peer: backtesting.py's Backtest.optimize over a random sample of the same grid
   (SmaCross, long/flat, its default multiprocessing on every core), installed in a
   throwaway virtual environment (never a dependency of the project). Variants per second
   side by side, and the ratio.
Results: bench/results/sweeps.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench import results as bench_results
from bench.catalog import recreate_postgres
from bench.jobs import DEFAULT_POSTGRES, call, env_for, manage, server, stop, worker

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"seconds": 60.0, "overhead": 0.20}
DATASET = "BENCH-SWEEP-1m"
PEER_VENV = Path(tempfile.gettempdir()) / "bench-sweeps-peer-venv"
COSTS = {"k_spread": 0.5, "fees_bps": 1}

SETUP = """
from datetime import date
from backtests.catalog.bars_import import store_bars
from backtests.engine import synthetic
from backtests.engine.walk_forward import slice_bars
series = synthetic.generate("BENCH", date(2022, 1, 1), date(2023, 12, 31), 130.0)
series = slice_bars(series, 0, {bars})
print(store_bars("{dataset}", series, "BENCH").dataset.bars_path)
"""

PEER = """
import json, sys, time, warnings
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA

warnings.filterwarnings("ignore")
path, fast, slow, tries = sys.argv[1], eval(sys.argv[2]), eval(sys.argv[3]), int(sys.argv[4])
df = pd.read_csv(path, index_col=0, parse_dates=True)


class SmaCross(Strategy):
    fast = 10
    slow = 200

    def init(self):
        self.a = self.I(SMA, self.data.Close, self.fast)
        self.b = self.I(SMA, self.data.Close, self.slow)

    def next(self):
        if crossover(self.a, self.b):
            self.buy()
        elif crossover(self.b, self.a):
            self.position.close()


bt = Backtest(df, SmaCross, cash=100_000, commission=0.0001, exclusive_orders=True)
started = time.perf_counter()
bt.optimize(fast=fast, slow=slow, maximize="Sharpe Ratio", max_tries=tries, random_state=0)
print(json.dumps({"variants": tries, "seconds": time.perf_counter() - started}))
"""


def grid(fast: int, slow: int) -> dict:
    """fast 5, 6, ... and slow 110, 120, ...: every pair valid (fast < slow)."""
    return {
        "fast": {"from": 5, "to": 4 + fast, "step": 1},
        "slow": {"from": 110, "to": 100 + 10 * slow, "step": 10},
    }


def engine_throughput(bars_file: Path, axes_spec: dict, chunk: int) -> dict:
    """Variants per second of the engine alone, on four chunks spread over the grid."""
    from backtests.engine import bars, strategies, sweep
    from backtests.engine.simulation import Costs

    strategy = strategies.get("sma_crossover")
    axes = {
        name: tuple(sweep.range_values(s["from"], s["to"], s["step"], int))
        for name, s in axes_spec.items()
    }
    plan = sweep.plan(strategy, axes)
    starts = [round(i * (len(plan.variants) - chunk) / 3) for i in range(4)]
    series = bars.load(bars_file, interval="1m", tz="America/New_York")
    costs = Costs(COSTS["k_spread"], COSTS["fees_bps"])
    started = time.perf_counter()
    for start in starts:
        sweep.evaluate(strategy, series, plan.variants[start : start + chunk], costs)
    seconds = time.perf_counter() - started
    return {"variants": 4 * chunk, "seconds": seconds, "per_s": 4 * chunk / seconds}


def queued_sweep(env: dict, var_dir: Path, body: dict, workers: int) -> dict:
    """POST the sweep with the workers waiting; seconds from the POST to DONE."""
    with ExitStack() as stack:
        srv, base = server(env, var_dir / "server.log")
        stack.callback(stop, srv)
        for n in range(workers):
            stack.callback(stop, worker(env, var_dir / f"worker-{n}.log"))
        time.sleep(2)  # the workers' start-up: they poll an empty queue
        started = time.perf_counter()
        created = call(base, "POST", "/sweeps", body)
        sweep_id = created["sweep_id"]
        while True:
            detail = call(base, "GET", f"/sweeps/{sweep_id}")
            if detail["status"] not in ("QUEUED", "RUNNING"):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        results = call(base, "GET", f"/sweeps/{sweep_id}/results?limit=1")["total"]
    return {
        "status": detail["status"],
        "variants": detail["total"],
        "results": results,
        "seconds": seconds,
        "per_s": detail["total"] / seconds,
        "best": detail["best"]["params"] if detail["best"] else None,
    }


def peer_python() -> Path | None:
    """backtesting.py in a throwaway virtual environment, or None if it will not install."""
    python = PEER_VENV / "bin" / "python"
    probe = [str(python), "-c", "import backtesting"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    install = [str(python), "-m", "pip", "install", "-q", "backtesting"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        return None
    return python


def peer(bars_file: Path, var_dir: Path, fast: int, slow: int, tries: int) -> dict | None:
    """backtesting.py's optimize over `tries` random variants of the same grid."""
    python = peer_python()
    if python is None:
        return None
    from backtests.engine import bars

    series = bars.load(bars_file, interval="1m", tz="America/New_York")
    csv = var_dir / "peer-bars.csv"
    with csv.open("w") as out:
        out.write("ts,Open,High,Low,Close,Volume\n")
        for row in zip(
            series.ts.view("datetime64[ns]").astype(str),
            series.open,
            series.high,
            series.low,
            series.close,
            series.volume,
            strict=True,
        ):
            out.write(",".join(map(str, row)) + "\n")
    script = var_dir / "peer.py"
    script.write_text(PEER)
    ranges = (f"range(5, {5 + fast})", f"range(110, {110 + 10 * slow}, 10)")
    done = subprocess.run(
        [str(python), str(script), str(csv), *ranges, str(tries)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["per_s"] = figures["variants"] / figures["seconds"]
    figures["version"] = subprocess.run(
        [str(python), "-c", "import backtesting; print(backtesting.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return figures


def main() -> None:
    """Measure, print, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", type=int, default=100, help="values of fast")
    parser.add_argument("--slow", type=int, default=100, help="values of slow")
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--peer-variants", type=int, default=24)
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    url = None
    if args.db == "postgres":
        url = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
        if not recreate_postgres(url):
            sys.exit(f"no PostgreSQL server at {url}")
    axes = grid(args.fast, args.slow)
    body = {"dataset_id": DATASET, "strategy_id": "sma_crossover", "grid": axes}
    body["slippage_fees"] = COSTS
    with tempfile.TemporaryDirectory(prefix="bench-sweeps-") as tmp:
        var_dir = Path(tmp)
        env = env_for(tmp, url)
        manage(env, "migrate", "--no-input")
        setup = SETUP.format(bars=args.bars, dataset=DATASET)
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", setup],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        bars_file = var_dir / "data" / out.stdout.strip().splitlines()[-1]
        chunk = int(env.get("SWEEP_CHUNK_VARIANTS", 250))
        engine = engine_throughput(bars_file, axes, chunk)
        queued = queued_sweep(env, var_dir, body, args.workers)
        theirs = (
            None
            if args.no_peer
            else peer(bars_file, var_dir, args.fast, args.slow, args.peer_variants)
        )
    ideal = queued["variants"] / (args.workers * engine["per_s"])
    overhead = queued["seconds"] / ideal - 1
    figures = {
        "cpus": os.cpu_count(),
        "bars": args.bars,
        "workers": args.workers,
        "db": args.db,
        "engine": engine,
        "sweep": queued,
        "ideal_seconds": ideal,
        "queue_overhead": overhead,
        "peer": theirs,
    }
    print(
        f"engine alone, one process: {engine['variants']} variants in {engine['seconds']:.2f} s, "
        f"{engine['per_s']:.0f} variants/s",
        flush=True,
    )
    verdict = "ok" if queued["seconds"] <= TARGETS["seconds"] else "MISSED"
    print(
        f"sweep of {queued['variants']:,} variants over {args.bars:,} bars, {args.workers} "
        f"workers, {args.db}: {queued['seconds']:.1f} s (target <= {TARGETS['seconds']:.0f}) "
        f"{verdict}; {queued['per_s']:.0f} variants/s; {queued['results']:,} results; "
        f"{queued['status']}",
        flush=True,
    )
    verdict = "ok" if overhead <= TARGETS["overhead"] else "MISSED"
    print(
        f"queue overhead over the engine's own throughput x {args.workers}: {overhead:+.1%} "
        f"(ideal {ideal:.1f} s; target <= {TARGETS['overhead']:.0%}) {verdict}",
        flush=True,
    )
    if theirs is not None:
        figures["ratio_vs_peer"] = queued["per_s"] / theirs["per_s"]
        print(
            f"backtesting.py {theirs['version']} optimize, {theirs['variants']} random "
            f"variants of the grid, every core: {theirs['seconds']:.1f} s, "
            f"{theirs['per_s']:.2f} variants/s; this service: "
            f"{figures['ratio_vs_peer']:.0f}x as many variants a second",
            flush=True,
        )
    elif not args.no_peer:
        print("backtesting.py: did not install; no peer figures")
    print(f"results: {bench_results.write('sweeps', figures)}")


if __name__ == "__main__":
    main()
