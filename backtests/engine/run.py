"""The engine's one entry point: a run's inputs and bars file in, artifacts and metrics out."""

import hashlib
import logging
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from backtests.engine import artifacts, bars, metrics, strategies
from backtests.engine.simulation import STARTING_CAPITAL, Costs, simulate

ENGINE_DIR = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)


class EngineError(Exception):
    """A run that cannot be computed from its inputs: retrying will not help."""


class Stopped(Exception):
    """The caller asked the run to stop (a cancel) at one of its checkpoints."""


def checkpoint(should_stop: Callable[[], bool] | None, stage: str) -> None:
    """Stop here if asked to: between stages, never in the middle of one."""
    if should_stop is not None and should_stop():
        raise Stopped(stage)


@dataclass(frozen=True)
class RunInputs:
    """What a run is: the strategy, its parameters and costs, over a dataset."""

    run_id: str
    dataset_id: str
    strategy_id: str
    params: dict = field(default_factory=dict)
    seed: int = 0
    slippage_fees: dict = field(default_factory=lambda: {"k_spread": 0.0, "fees_bps": 0.0})
    strategy_version: str = ""  # when given, the strategy must still be this version


@dataclass(frozen=True)
class RunResult:
    """What a run produced."""

    metrics: dict
    null_reasons: dict
    artifacts: dict[str, Path]
    bars: int
    fills: int
    code_hash: str
    duration_ms: int
    bars_sha256: str = ""  # the bars it was computed on (checked when given)


def code_hash() -> str:
    """sha256 over the engine's source files: which code computed a run."""
    digest = hashlib.sha256()
    for path in sorted(ENGINE_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def strategy_targets(strategy, series, params: dict, costs: Costs) -> np.ndarray:
    """The strategy's targets; its own failure (an exception in it, a bad output) is the
    run's EngineError naming the strategy, where in its code, and why."""
    try:
        return strategy.targets(series, params, costs)
    except strategies.StrategyOutputError as exc:
        raise EngineError(str(exc)) from None
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        logger.warning("strategy %s failed", strategy.strategy_id, exc_info=True)
        raise EngineError(
            f"strategy {strategy.strategy_id} raised {type(exc).__name__}{where}: {exc}"
        ) from None


def costs_of(slippage_fees: dict) -> Costs:
    """The run's costs, within their bounds (simulation.py), or EngineError."""
    try:
        costs = Costs(float(slippage_fees["k_spread"]), float(slippage_fees["fees_bps"]))
    except (KeyError, TypeError, ValueError):
        raise EngineError("slippage_fees must have numbers k_spread and fees_bps") from None
    problems = costs.problems()
    if problems:
        listed = "; ".join(f"{name} {rule}" for name, rule in problems.items())
        raise EngineError(f"bad slippage_fees: {listed}")
    return costs


def run(
    inputs: RunInputs,
    bars_path: Path,
    out_dir: Path,
    dataset_sha256: str = "",
    should_stop: Callable[[], bool] | None = None,
    *,
    interval: str = "1m",
    tz: str = "UTC",
) -> RunResult:
    """Compute a run: read bars, signal, simulate, measure, write every artifact.

    With `dataset_sha256`, the bars file must have those bytes (EngineError otherwise):
    a run is computed on the bars it names, or not at all. `interval` and `tz` describe a
    bars file written before files carried them (bars.load).

    `should_stop` is asked at four checkpoints (after reading the bars, after the signal,
    after the simulation and metrics, and before the artifacts are written); True there
    raises Stopped and nothing is written.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    try:
        strategy = strategies.get(inputs.strategy_id)
        params = strategies.resolve_params(strategy, inputs.params)
    except strategies.UnknownStrategy:
        known = ", ".join(strategies.REGISTRY)
        raise EngineError(f"unknown strategy {inputs.strategy_id!r} (known: {known})") from None
    except strategies.ParamsError as exc:
        raise EngineError(f"bad parameters: {exc}") from None
    if inputs.strategy_version and inputs.strategy_version != strategy.version:
        raise EngineError(
            f"strategy {strategy.strategy_id} changed since the run was queued (version "
            f"{inputs.strategy_version}, now {strategy.version}): post the run again"
        )
    costs = costs_of(inputs.slippage_fees)
    if not Path(bars_path).is_file():
        # Named as the data folder names it: the server's own paths stay its own.
        raise EngineError(
            f"dataset {inputs.dataset_id} has no bars file ({Path(bars_path).name} is not "
            "in the data folder): import its bars again"
        )
    try:
        series = bars.load(bars_path, dataset_sha256, interval, tz)
    except bars.BarsChanged as changed:
        raise EngineError(
            f"dataset {inputs.dataset_id}: {changed}; import the bars again"
        ) from None
    if len(series) < 2:
        raise EngineError(f"dataset {inputs.dataset_id} has fewer than two bars")
    checkpoint(should_stop, "bars read")
    target = strategy_targets(strategy, series, params, costs)
    checkpoint(should_stop, "signal")
    sim = simulate(series, target, costs)
    values, reasons = metrics.compute(sim, series)
    checkpoint(should_stop, "simulation")
    hash_ = code_hash()
    manifest = {
        "run_id": inputs.run_id,
        "inputs": {**asdict(inputs), "params": params, "strategy_version": strategy.version},
        "strategy": {"module": strategy.module, "version": strategy.version},
        "dataset": {
            "dataset_id": inputs.dataset_id,
            "sha256": dataset_sha256,
            "interval": series.interval,
            "tz": series.tz,
        },
        "starting_capital": STARTING_CAPITAL,
        "code_hash": hash_,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    checkpoint(should_stop, "artifacts")
    paths = artifacts.write_run(
        out_dir, series, sim, {"metrics": values, "null_reasons": reasons}, manifest
    )
    return RunResult(
        metrics=values,
        null_reasons=reasons,
        artifacts=paths,
        bars=len(series),
        fills=len(sim.side),
        code_hash=hash_,
        duration_ms=round((time.perf_counter() - started) * 1000),
        bars_sha256=dataset_sha256,
    )
