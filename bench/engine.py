"""Engine benchmark: one year of one-minute bars through every strategy.

    python -m bench.engine [--repeat 7]

For each strategy (its default parameters; SMA(20, 50) is the headline): the simulation
alone (signal, fills, equity, metrics, in memory), the whole run through the engine's
entry point (bars read + simulation + every artifact written), and the run's peak memory
(measured in a fresh process: the rise of its resident high-water mark over its first
run, which includes the libraries' one-time set-up, and over a second run).
The reference, timed in the same run, is the bar-by-bar loop the tests use as the oracle.
Also: importing the year as CSV (read, check every row, write Parquet), and generating
the demo's synthetic year. Medians of `--repeat` runs. Results: bench/results/engine.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv

from backtests.engine import bar_files, bars, metrics, strategies, synthetic
from backtests.engine.api import BarStrategy, Param, strategy
from backtests.engine.indicators import rolling_mean
from backtests.engine.run import RunInputs, run
from backtests.engine.simulation import Costs, simulate
from bench import results as bench_results
from tests.engine_oracle import oracle_signal, oracle_simulation

ROOT = Path(__file__).resolve().parent.parent
COSTS = {"k_spread": 0.5, "fees_bps": 1}
HEADLINE = ("sma_crossover", {"fast": 20, "slow": 50})
TARGETS_MS = {"simulation": 50, "full": 250, "import_csv": 2000, "synthetic": 5000}
TARGET_PEAK_MIB = 100

# Run in a fresh interpreter: the rise of VmHWM over one engine run.
PEAK_SCRIPT = """
import json, sys
from pathlib import Path
from backtests.engine.run import RunInputs, run
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
strategy_id, params, costs, bars_path, out = json.loads(sys.argv[1])
peaks = []
# The first run also loads what libraries load once per process (Arrow's allocator
# pools, lazily imported modules); the second is what each further run costs.
for name in ("cold", "warm"):
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    before = status("VmRSS:")
    run(RunInputs(name, "bench", strategy_id, params, 0, costs), Path(bars_path), Path(out))
    peaks.append(status("VmHWM:") - before)
print(json.dumps(peaks))
"""


def median_ms(function, repeat: int) -> float:
    """The median wall time of `function()` over `repeat` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def peak_mib(strategy_id: str, params: dict, bars_path: Path, out: Path) -> list[float]:
    """A run's peak memory in a fresh process: [first run, second run], MiB."""
    argument = json.dumps([strategy_id, params, COSTS, str(bars_path), str(out)])
    output = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, argument],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [peak / 2**20 for peak in json.loads(output)]


def simulate_once(series: bars.Bars, strategy_id: str, params: dict) -> None:
    sim = simulate(series, strategies.signal(strategy_id, params, series), Costs(**COSTS))
    metrics.compute(sim, series)


@strategy(
    params={"fast": Param(int, 20, 1, 1000, "fast"), "slow": Param(int, 50, 2, 5000, "slow")},
    id="bench_user_long_short",
)
def user_long_short(bars, fast, slow):
    """A user's long/short rule: +1 above, -1 below, written as a user would."""
    difference = rolling_mean(bars.close, fast) - rolling_mean(bars.close, slow)
    return np.nan_to_num(np.sign(difference))


@strategy(id="bench_trivial_bar_rule")
class TrivialBarRule(BarStrategy):
    """Keeps its target: the bar-by-bar form's own cost."""

    def next(self, i):
        return None


def user_strategies(repeat: int) -> dict:
    """A user's long/short strategy against the built-in SMA over 100k and 1M bars, and
    the bar-by-bar form's cost per bar."""
    out = {}
    ten_years = synthetic.generate("AAPL", date(2014, 1, 1), date(2024, 12, 31), 130.0)
    for size in (100_000, 1_000_000):
        series = slice_bars(ten_years, size)
        builtin = median_ms(lambda s=series: simulate_once(s, *HEADLINE), repeat)
        user = median_ms(
            lambda s=series: simulate_once(s, "bench_user_long_short", HEADLINE[1]), repeat
        )
        out[f"long_short_{size}"] = {
            "builtin_ms": builtin,
            "user_ms": user,
            "ratio": user / builtin,
        }
    series = slice_bars(ten_years, 100_000)
    per_bar = median_ms(
        lambda: strategies.signal("bench_trivial_bar_rule", {}, series, Costs(**COSTS)), repeat
    )
    out["bar_by_bar_us_per_bar"] = per_bar * 1000 / len(series)
    return out


def builtin_strategies() -> dict:
    """The built-ins (this module registers two of its own, measured apart)."""
    return {
        strategy_id: s
        for strategy_id, s in strategies.REGISTRY.items()
        if s.module == "backtests.engine.builtins"
    }


def slice_bars(series: bars.Bars, size: int) -> bars.Bars:
    """The first `size` bars."""
    columns = {name: getattr(series, name)[:size] for name in bars.COLUMNS}
    return bars.Bars(**columns, interval=series.interval, tz=series.tz)


def main() -> None:
    """Time everything, print a table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    figures: dict = {}

    start, end = date(2023, 1, 1), date(2023, 12, 31)
    figures["synthetic_ms"] = median_ms(
        lambda: synthetic.generate.__wrapped__("AAPL", start, end, 130.0), 3
    )
    series = synthetic.generate("AAPL", start, end, 130.0)
    bars_path = work / "AAPL-2023.parquet"
    bars.write(series, bars_path)
    csv_path = work / "AAPL-2023.csv"
    pa_csv.write_csv(series.to_table(), csv_path)
    figures["bars"] = len(series)
    figures["import_csv_ms"] = median_ms(
        lambda: bars.write(bar_files.read(csv_path), work / "imported.parquet"), 3
    )

    long = strategies.signal(*HEADLINE, series)
    started = time.perf_counter()
    oracle_simulation(series, oracle_signal(*HEADLINE, series), Costs(**COSTS))
    figures["oracle_loop_ms"] = (time.perf_counter() - started) * 1000
    figures["fills_headline"] = len(simulate(series, long, Costs(**COSTS)).side)

    print(f"{len(series):,} one-minute bars (synthetic AAPL 2023, 250 NYSE sessions)")
    print(
        f"{'strategy':38} {'simulation':>11} {'full run':>9} {'peak 1st/2nd run':>17} "
        f"{'vs loop':>8}"
    )
    rows = {}
    for strategy_id, registered in builtin_strategies().items():
        params = HEADLINE[1] if strategy_id == HEADLINE[0] else {}
        resolved = strategies.resolve_params(registered, params)
        sim_ms = median_ms(
            lambda s=strategy_id, p=resolved: simulate_once(series, s, p), args.repeat
        )
        inputs = RunInputs("bench", "AAPL-2023", strategy_id, resolved, 0, COSTS)
        full_ms = median_ms(lambda i=inputs: run(i, bars_path, work / "run"), args.repeat)
        peak = peak_mib(strategy_id, resolved, bars_path, work / "peak")
        rows[strategy_id] = {
            "params": resolved,
            "simulation_ms": sim_ms,
            "full_ms": full_ms,
            "peak_mib": peak,
        }
        label = f"{strategy_id}({', '.join(f'{k}={v}' for k, v in resolved.items())})"
        print(
            f"{label:38} {sim_ms:9.1f}ms {full_ms:7.1f}ms {peak[0]:6.1f} /{peak[1]:5.1f} MiB "
            f"{figures['oracle_loop_ms'] / sim_ms:7.0f}x"
        )
    figures["strategies"] = rows

    users = figures["user_strategies"] = user_strategies(args.repeat)
    for size in (100_000, 1_000_000):
        row = users[f"long_short_{size}"]
        print(
            f"a user's long/short SMA(20,50) over {size:,} bars: {row['user_ms']:.1f} ms, the "
            f"built-in long/flat SMA {row['builtin_ms']:.1f} ms ({row['ratio']:.2f}x)"
        )
    head = rows[HEADLINE[0]]
    checks = [
        ("SMA(20,50) simulation", head["simulation_ms"], TARGETS_MS["simulation"], "ms"),
        ("SMA(20,50) read + simulate + artifacts", head["full_ms"], TARGETS_MS["full"], "ms"),
        ("SMA(20,50) peak memory, first run", head["peak_mib"][0], TARGET_PEAK_MIB, "MiB"),
        ("SMA(20,50) peak memory, later runs", head["peak_mib"][1], TARGET_PEAK_MIB, "MiB"),
        ("import one year of CSV bars", figures["import_csv_ms"], TARGETS_MS["import_csv"], "ms"),
        (
            "generate the demo's synthetic year",
            figures["synthetic_ms"],
            TARGETS_MS["synthetic"],
            "ms",
        ),
        ("user long/short vs SMA, 100k bars", users["long_short_100000"]["ratio"], 2, "x"),
        ("user long/short vs SMA, 1M bars", users["long_short_1000000"]["ratio"], 2, "x"),
        ("bar-by-bar form, trivial rule", users["bar_by_bar_us_per_bar"], 3, "us"),
    ]
    print(
        f"reference: the bar-by-bar loop (tests/engine_oracle.py) simulates SMA(20,50) in "
        f"{figures['oracle_loop_ms']:.0f} ms; the engine is "
        f"{figures['oracle_loop_ms'] / head['simulation_ms']:.0f}x faster"
    )
    for name, value, target, unit in checks:
        verdict = "ok" if value <= target else "MISSED"
        print(f"{name:42} {value:8.1f} {unit:3} (target <= {target}) {verdict}")
    print(f"results: {bench_results.write('engine', figures)}")


if __name__ == "__main__":
    main()
