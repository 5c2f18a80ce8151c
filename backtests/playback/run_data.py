"""A finished run's arrays for playback, loaded once per process and shared by its sockets.

Bars (the dataset's Parquet file), equity and fills (the run's artifacts), and the running
metrics, as numpy arrays: a socket holds only its position, speed and state, never a copy.
Loading reads files, so it runs in a thread, never on the event loop; concurrent first
plays of one run share one load. The cache is bounded by PLAYBACK_CACHE_BYTES, least
recently used out.
"""

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from channels.db import database_sync_to_async
from django.conf import settings

from backtests.engine import artifacts
from backtests.engine import bars as engine_bars
from backtests.engine.intervals import SECONDS
from backtests.engine.metrics import running
from backtests.errors import ErrorCode
from backtests.models import Run
from project import metrics

# Arrow imports pandas on its first conversion to numpy (a third of a second): do it when
# the server starts, not on the first viewer's play.
pa.array([0.0]).to_numpy()


class RunNotFound(LookupError):
    """No run has this id."""


class RunNotPlayable(Exception):
    """The run exists but cannot be played: not DONE (its status says why)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class Unplayable(Exception):
    """A DONE run that cannot be played; `code` is the error that says why (409)."""

    code = ErrorCode.ARTIFACTS_MISSING


class BarsMismatch(Unplayable):
    """A DONE run whose bars file is not the one it was computed on (or is gone): its
    fills would be drawn on other prices, so it is not played."""

    code = ErrorCode.BARS_MISMATCH


class ArtifactsMissing(Unplayable):
    """A DONE run whose equity or fills file is missing or unreadable (deleted, or the
    run was marked DONE without being computed)."""

    code = ErrorCode.ARTIFACTS_MISSING


def read_artifact(run_id: str, path: Path, columns: list[str]) -> pa.Table:
    """The columns of one of a run's artifacts; ArtifactsMissing when it cannot be read."""
    try:
        return artifacts.read(run_id, path, columns)
    except artifacts.ArtifactUnreadable as exc:
        raise ArtifactsMissing(str(exc)) from None


@dataclass(frozen=True, eq=False)
class RunData:
    """Everything a frame needs, by bar index; fills sorted by bar."""

    run_id: str
    speed: int  # the run's own playback speed, the default
    ts: np.ndarray  # int64 UTC nanoseconds
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    equity: np.ndarray
    total_return: np.ndarray
    max_drawdown: np.ndarray
    fill_bar: np.ndarray  # bar index of each fill
    fill_side: list[str]
    fill_qty: np.ndarray
    fill_price: np.ndarray
    fill_fee: np.ndarray
    bar_seconds: float
    # Frame texts by (first, last) bar, without their `dropped` (frames.py): filled as
    # the run plays, shared by its sockets.
    frame_texts: OrderedDict[tuple[int, int], str] = field(default_factory=OrderedDict, repr=False)

    @property
    def bars(self) -> int:
        return len(self.ts)

    @property
    def nbytes(self) -> int:
        arrays = [v for v in vars(self).values() if isinstance(v, np.ndarray)]
        return sum(a.nbytes for a in arrays) + 64 * len(self.fill_side)

    def bar_at(self, position: int | str) -> int:
        """A bar index as given, or the first bar at or after an ISO UTC time (== bars
        when there is none)."""
        if isinstance(position, int):
            return position
        when = datetime.fromisoformat(position.replace("Z", "+00:00"))
        ts_ns = int(when.timestamp()) * 10**9 + when.microsecond * 1000
        return int(np.searchsorted(self.ts, ts_ns, side="left"))


@dataclass(frozen=True)
class RunFiles:
    """Where a DONE run's data is, and what its bars must be."""

    speed: int
    bar_seconds: int  # the dataset's interval, in seconds
    bars_path: Path
    bars_sha256: str  # "" for a run recorded before runs kept it: not checked
    equity_path: Path
    fills_path: Path


def run_files(run_id: str) -> RunFiles:
    """A DONE run's files; RunNotFound or RunNotPlayable.

    The bars are the run's own, by the sha256 it was computed on (content-addressed:
    `<sha256>.parquet`), which is its dataset's file unless that was changed since."""
    row = (
        Run.objects.filter(run_id=run_id)
        .values_list(
            "status",
            "speed",
            "bars_sha256",
            "dataset__bars_path",
            "dataset__interval",
            "equity_path",
            "fills_path",
        )
        .first()
    )
    if row is None:
        raise RunNotFound(run_id)
    status, speed, bars_sha256, bars_path, interval, equity_path, fills_path = row
    if status != Run.Status.DONE:
        raise RunNotPlayable(status)
    data, artifacts = Path(settings.DATA_DIR), Path(settings.ARTIFACTS_DIR)
    own = data / f"{bars_sha256}.parquet"
    return RunFiles(
        speed=speed,
        bar_seconds=SECONDS.get(interval, 60),
        bars_path=own if bars_sha256 and own.is_file() else data / bars_path,
        bars_sha256=bars_sha256,
        equity_path=artifacts / equity_path,
        fills_path=artifacts / fills_path,
    )


def load(run_id: str, files: RunFiles) -> RunData:
    """Read a run's files into RunData (blocking: call it in a thread); BarsMismatch when
    the bars are not the run's, ArtifactsMissing when its own files cannot be read."""
    try:
        series = engine_bars.load(files.bars_path, files.bars_sha256)
    except FileNotFoundError:
        raise BarsMismatch(f"run {run_id}: its bars file is missing") from None
    except engine_bars.BarsChanged as changed:
        raise BarsMismatch(f"run {run_id}: {changed}") from None
    equity = read_artifact(run_id, files.equity_path, ["equity"]).column("equity").to_numpy()
    if len(equity) != len(series):
        raise BarsMismatch(
            f"run {run_id} was computed on {len(equity):,} bars; its dataset now has "
            f"{len(series):,}"
        )
    fills = read_artifact(run_id, files.fills_path, ["ts", "side", "qty", "price", "fee"])
    fill_ts = fills.column("ts").cast("int64").to_numpy()
    total_return, max_drawdown = running(equity)
    return RunData(
        run_id=run_id,
        speed=files.speed,
        ts=series.ts,
        open=series.open,
        high=series.high,
        low=series.low,
        close=series.close,
        volume=series.volume,
        equity=equity,
        total_return=total_return,
        max_drawdown=max_drawdown,
        fill_bar=np.searchsorted(series.ts, fill_ts),
        fill_side=fills.column("side").to_pylist(),
        fill_qty=fills.column("qty").to_numpy(),
        fill_price=fills.column("price").to_numpy(),
        fill_fee=fills.column("fee").to_numpy(),
        # The bars' own time: gaps between sessions and weekends are skipped.
        bar_seconds=float(files.bar_seconds),
    )


class RunCache:
    """Per process: run id -> RunData, least recently used out past the byte budget."""

    def __init__(self) -> None:
        self.runs: OrderedDict[str, RunData] = OrderedDict()
        self.loading: dict[str, asyncio.Future] = {}
        self.loads = 0  # how many times a run was read from disk (tests, metrics)

    @property
    def nbytes(self) -> int:
        return sum(run.nbytes for run in self.runs.values())

    async def get(self, run_id: str) -> RunData:
        """The run's data: cached, or loaded once (in a thread) however many ask at once."""
        if run_id in self.runs:
            self.runs.move_to_end(run_id)
            return self.runs[run_id]
        pending = self.loading.get(run_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self.loading[run_id] = future
        try:
            files = await database_sync_to_async(run_files)(run_id)
            data = await asyncio.to_thread(load, run_id, files)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning if nobody waits
            raise
        finally:
            self.loading.pop(run_id, None)
        self.loads += 1
        metrics.PLAYBACK_LOADS.inc()
        self.runs[run_id] = data
        self.evict()
        metrics.PLAYBACK_CACHE_BYTES.set(self.nbytes)
        future.set_result(data)
        return data

    def evict(self) -> None:
        """Drop the least recently used runs while over budget (never the newest)."""
        while len(self.runs) > 1 and self.nbytes > settings.PLAYBACK_CACHE_BYTES:
            self.runs.popitem(last=False)

    def clear(self) -> None:
        """Forget every run (tests)."""
        self.runs.clear()
        self.loading.clear()
        self.loads = 0


CACHE = RunCache()
