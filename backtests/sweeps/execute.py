"""Compute one claimed sweep chunk with the engine, renewing its lease, and record it.

A chunk reads its dataset's bars once (a worker keeps the last series it read, for the
sweep's next chunk) and computes its variants in this process, sharing indicator work
across them (engine/memo.py). The last walk-forward window also stitches the
out-of-sample run and records it as a DONE run with its artifacts.
"""

import logging
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from backtests.catalog.hashing import hash_of
from backtests.catalog.queries import default_speed
from backtests.engine import artifacts, bars, strategies, sweep, walk_forward
from backtests.engine import run as engine
from backtests.jobs.execute import INTERNAL_ERROR, LeaseKeeper, default_worker_id
from backtests.jobs.time_limit import RunTimedOut, time_limit
from backtests.models import Run, RunMetrics, Sweep, SweepChunk
from backtests.sweeps import lifecycle

logger = logging.getLogger(__name__)
# How often a running chunk asks whether its sweep was cancelled (seconds).
STOP_CHECK_SECONDS = 0.5
_last_series: dict[tuple[str, str], bars.Bars] = {}


def execute_chunk(chunk_id: int, worker_id: str | None = None) -> str | None:
    """Claim and compute a QUEUED chunk; its final status (None: not claimed)."""
    worker_id = worker_id or default_worker_id()
    # Re-entrant: after a transient error the task calls again for the chunk it holds.
    held = lifecycle.claim(chunk_id, worker_id) or lifecycle.holding(chunk_id, worker_id).exists()
    if not held:
        return None
    chunk = SweepChunk.objects.select_related("sweep__dataset").get(pk=chunk_id)
    keeper = LeaseKeeper(f"chunk-{chunk_id}", lambda: lifecycle.renew(chunk_id, worker_id))
    keeper.start()
    try:
        return compute_chunk(chunk, worker_id)
    finally:
        keeper.stop()


def throttled(check: Callable[[], bool], seconds: float) -> Callable[[], bool]:
    """`check`, asked at most once every `seconds` (False in between)."""
    next_at = time.monotonic() + seconds

    def ask() -> bool:
        nonlocal next_at
        if time.monotonic() < next_at:
            return False
        next_at = time.monotonic() + seconds
        return check()

    return ask


def load_series(sweep_row: Sweep) -> bars.Bars:
    """The sweep's bars, checked against the dataset's sha256; the last series read is
    kept for the next chunk of the same dataset."""
    dataset = sweep_row.dataset
    if not dataset.bars_path:
        raise engine.EngineError(f"dataset {dataset.dataset_id} has no bars (import them first)")
    key = (dataset.bars_path, dataset.bars_sha256)
    if key not in _last_series:
        path = Path(settings.DATA_DIR) / dataset.bars_path
        if not path.is_file():
            raise engine.EngineError(
                f"dataset {dataset.dataset_id} has no bars file: import its bars again"
            )
        try:
            series = bars.load(path, dataset.bars_sha256, dataset.interval, dataset.tz)
        except bars.BarsChanged as changed:
            raise engine.EngineError(f"dataset {dataset.dataset_id}: {changed}") from None
        _last_series.clear()
        _last_series[key] = series
    return _last_series[key]


def strategy_of(sweep_row: Sweep) -> strategies.Strategy:
    """The sweep's strategy, at the version it was queued with (EngineError if not)."""
    try:
        strategy = strategies.get(sweep_row.strategy_id)
    except strategies.UnknownStrategy:
        raise engine.EngineError(f"unknown strategy {sweep_row.strategy_id!r}") from None
    if sweep_row.strategy_version and sweep_row.strategy_version != strategy.version:
        raise engine.EngineError(
            f"strategy {strategy.strategy_id} changed since the sweep was queued: post it again"
        )
    return strategy


def axes_of(sweep_row: Sweep) -> sweep.Axes:
    return {name: tuple(values) for name, values in sweep_row.grid.items()}


def variants_of(strategy: strategies.Strategy, sweep_row: Sweep, numbers: list[int]):
    """The chunk's variants: (grid number, resolved parameters)."""
    axes = axes_of(sweep_row)
    return [(n, strategies.resolve_params(strategy, sweep.variant_at(axes, n))) for n in numbers]


def compute_chunk(chunk: SweepChunk, worker_id: str) -> str | None:
    """Compute a claimed chunk and record DONE, or the sweep's ERROR, or CANCELLED."""
    chunk_id = chunk.pk
    sweep_row = chunk.sweep
    should_stop = throttled(lambda: lifecycle.should_stop(chunk_id, worker_id), STOP_CHECK_SECONDS)
    try:
        with time_limit(settings.JOB_RUN_TIMEOUT_SECONDS):
            strategy = strategy_of(sweep_row)
            costs = engine.costs_of(sweep_row.slippage_fees)
            series = load_series(sweep_row)
            variants = variants_of(strategy, sweep_row, chunk.variants)
            if chunk.window is not None:
                return compute_window(chunk, worker_id, strategy, series, variants, costs)
            outcomes = sweep.evaluate(strategy, series, variants, costs, should_stop)
    except RunTimedOut:
        limit = settings.JOB_RUN_TIMEOUT_SECONDS
        lifecycle.fail(
            chunk_id,
            worker_id,
            f"chunk {chunk.number} took longer than its time limit ({limit:g} s, "
            "JOB_RUN_TIMEOUT_SECONDS): give fewer variants per chunk (SWEEP_CHUNK_VARIANTS)",
        )
        return Sweep.Status.ERROR
    except engine.Stopped:
        lifecycle.stopped(chunk_id, worker_id)
        return Sweep.Status.CANCELLED
    except lifecycle.LostChunk:
        return None
    except (engine.EngineError, walk_forward.WindowsError) as exc:
        lifecycle.fail(chunk_id, worker_id, str(exc))
        return Sweep.Status.ERROR
    except DatabaseError:
        raise  # possibly transient: the task retries
    except Exception:
        logger.exception("sweep %s chunk %d failed", sweep_row.sweep_id, chunk.number)
        lifecycle.fail(chunk_id, worker_id, INTERNAL_ERROR)
        return Sweep.Status.ERROR
    if lifecycle.finish_done(chunk_id, worker_id, outcomes, sweep_row.maximize):
        return Sweep.Status.DONE
    lifecycle.stopped(chunk_id, worker_id)
    return None


def windows_of(sweep_row: Sweep, series: bars.Bars) -> list[walk_forward.Window]:
    spec = sweep_row.walk_forward
    return walk_forward.windows(series.ts, spec["train"], spec["test"], spec["step"])


def compute_window(chunk, worker_id, strategy, series, variants, costs) -> str | None:
    """A walk-forward window; the last one also stitches the out-of-sample run."""
    sweep_row = chunk.sweep
    window = windows_of(sweep_row, series)[chunk.window]
    result = walk_forward.evaluate_window(
        strategy, series, window, variants, costs, sweep_row.maximize
    )
    sweep_id, last = lifecycle.finish_window(chunk.pk, worker_id, result.describe(series))
    if not last:
        return Sweep.Status.DONE
    row = Sweep.objects.select_related("dataset").get(pk=sweep_id)
    record = stitch(row, strategy, series, costs)
    return Sweep.Status.DONE if lifecycle.finish_stitched(chunk.pk, worker_id, record) else None


def stitch(sweep_row: Sweep, strategy, series: bars.Bars, costs):
    """Compute the walk-forward's stitched out-of-sample run and write its files; the
    function that saves it as a DONE run (called in the chunk's finishing transaction)."""
    by_number = {w.number: w for w in windows_of(sweep_row, series)}
    choices = [(by_number[w["window"]], w["params"]) for w in sweep_row.windows]
    if all(params is None for _, params in choices):
        return lambda: (None, None)
    oos, sim, values, reasons = walk_forward.stitched(strategy, series, choices, costs)
    data = Path(settings.DATA_DIR)
    tmp, digest, _ = bars.write_temp(oos, data)
    tmp.replace(data / f"{digest}.parquet")  # named by its content: never rewritten
    run = Run(
        dataset=sweep_row.dataset,
        strategy_id=sweep_row.strategy_id,
        strategy_version=sweep_row.strategy_version,
        params={},
        seed=sweep_row.seed,
        slippage_fees=sweep_row.slippage_fees,
        speed=max(1, round(default_speed(sweep_row.dataset) * len(oos) / len(series))),
        status=Run.Status.DONE,
        input_hash=hash_of({"walk_forward_of": sweep_row.sweep_id}),
        owner=sweep_row.owner,
        client=sweep_row.client,
        bars_sha256=digest,
        code_hash=engine.code_hash(),
        started_at=timezone.now(),
    )
    manifest = {
        "run_id": run.run_id,
        "walk_forward_of": sweep_row.sweep_id,
        "windows": sweep_row.windows,
        "dataset": {"dataset_id": sweep_row.dataset_id, "sha256": digest},
        "code_hash": run.code_hash,
    }
    paths = artifacts.write_run(
        Path(settings.ARTIFACTS_DIR) / run.run_id,
        oos,
        sim,
        {"metrics": values, "null_reasons": reasons},
        manifest,
    )
    for key, path in paths.items():
        setattr(run, f"{key}_path", f"{run.run_id}/{path.name}")
    run.finished_at = timezone.now()
    run.duration_ms = 0

    def record() -> tuple[str, dict]:
        run.save()
        RunMetrics.objects.create(run=run, **values)
        return run.run_id, {"windows": len(choices), "oos_run_id": run.run_id, "metrics": values}

    return record
