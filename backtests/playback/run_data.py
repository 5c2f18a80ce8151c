"""A finished run's arrays for playback, loaded once per process and shared by its sockets.

Bars (the dataset's Parquet file), equity and fills (the run's artifacts), and the running
metrics, as numpy arrays: a socket holds only its position, speed and state, never a copy.
Loading reads files, so it runs in a thread, never on the event loop; concurrent first
plays of one run share one load. The cache is bounded by PLAYBACK_CACHE_BYTES, counting
the runs that live players hold (never evicted) and the least recently used others.
"""

import asyncio
import logging
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
from backtests.jobs import retention
from backtests.models import Run
from project import metrics

logger = logging.getLogger(__name__)

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
    position: np.ndarray  # the signed quantity held after each bar
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
    bars: int  # the dataset's bars (0 if not known): what the arrays will cost
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
            "dataset__bars",
            "equity_path",
            "fills_path",
        )
        .first()
    )
    if row is None:
        raise RunNotFound(run_id)
    status, speed, bars_sha256, bars_path, interval, bars, equity_path, fills_path = row
    if status != Run.Status.DONE:
        raise RunNotPlayable(status)
    if not equity_path or not fills_path:
        raise ArtifactsMissing(
            f"run {run_id} is DONE but its artifacts cannot be read (missing or damaged): "
            "removed by artifact retention, or never written; compute it again (Re-run in "
            f"the admin, or manage.py run_backtest {run_id} --force)"
        )
    artifacts = Path(settings.ARTIFACTS_DIR)
    return RunFiles(
        speed=speed,
        bars=bars or 0,
        bar_seconds=SECONDS.get(interval, 60),
        bars_path=run_bars_path(bars_sha256, bars_path),
        bars_sha256=bars_sha256,
        equity_path=artifacts / equity_path,
        fills_path=artifacts / fills_path,
    )


def run_bars_path(bars_sha256: str, dataset_bars_path: str) -> Path:
    """The bars a run was computed on: the file named by its sha256 when it is there (the
    content it recorded), else its dataset's file."""
    data = Path(settings.DATA_DIR)
    own = data / f"{bars_sha256}.parquet"
    return own if bars_sha256 and own.is_file() else data / dataset_bars_path


def load(run_id: str, files: RunFiles) -> RunData:
    """Read a run's files into RunData (blocking: call it in a thread); BarsMismatch when
    the bars are not the run's, ArtifactsMissing when its own files cannot be read."""
    try:
        series = engine_bars.load(files.bars_path, files.bars_sha256)
    except FileNotFoundError:
        raise BarsMismatch(f"run {run_id}: its bars file is missing") from None
    except engine_bars.BarsChanged as changed:
        raise BarsMismatch(f"run {run_id}: {changed}") from None
    curve = read_artifact(run_id, files.equity_path, ["equity", "position"])
    equity = curve.column("equity").to_numpy()
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
        position=curve.column("position").to_numpy(),
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


class PlaybackFull(Exception):
    """Loading another run would pass PLAYBACK_CACHE_BYTES: the runs in memory are held
    by live players (sockets and streams), which cannot be evicted."""


# What a run's arrays cost per bar: six of the bars (int64 and float64), equity, position
# and the two running metrics, 8 bytes each (RunData.nbytes counts the real figure once
# loaded).
BYTES_PER_BAR = 10 * 8
# How often the runs being played are marked so (retention's PLAYED_GRACE is 5 minutes).
PLAYED_MARK_SECONDS = 60


class RunCache:
    """Per process: run id -> RunData, held by live players or least recently used.

    The budget (PLAYBACK_CACHE_BYTES) counts every run in memory, those that players hold
    included: a held run is never evicted (a socket would keep it alive anyway), so a new
    run that does not fit beside the held ones is refused (PlaybackFull), not loaded.
    """

    def __init__(self) -> None:
        self.runs: OrderedDict[str, RunData] = OrderedDict()
        self.holders: dict[str, int] = {}  # run id -> live players holding it
        self.loading: dict[str, asyncio.Future] = {}
        self.loads = 0  # how many times a run was read from disk (tests, metrics)
        self.marking: asyncio.TimerHandle | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of every run in memory, held or not (what /metrics reports)."""
        return sum(run.nbytes for run in self.runs.values())

    @property
    def held_bytes(self) -> int:
        return sum(self.runs[run_id].nbytes for run_id in self.holders if run_id in self.runs)

    async def get(self, run_id: str) -> RunData:
        """The run's data: cached, or loaded once (in a thread) however many ask at once;
        PlaybackFull when it does not fit beside the runs that players hold."""
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
            self.check_room(run_id, files.bars * BYTES_PER_BAR)  # before reading anything
            data = await asyncio.to_thread(load, run_id, files)
            self.check_room(run_id, data.nbytes)
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
        future.set_result(data)
        return data

    def check_room(self, run_id: str, size: int) -> None:
        """PlaybackFull if `size` more bytes would pass the budget beside the held runs
        (with nothing held, one run is always let in, whatever its size)."""
        held = self.held_bytes
        budget = settings.PLAYBACK_CACHE_BYTES
        if held and held + size > budget:
            metrics.PLAYBACK_REFUSED.inc()
            raise PlaybackFull(
                f"run {run_id} cannot be played now: {len(self.holders)} runs playing here "
                f"hold {held / 2**20:,.0f} MiB of the {budget / 2**20:,.0f} MiB for playback "
                f"(PLAYBACK_CACHE_BYTES), and it needs {size / 2**20:,.0f} MiB more; retry "
                "when one ends"
            )

    def hold(self, data: RunData) -> None:
        """A live player uses this run: it stays in memory (and counted) until released."""
        self.runs.setdefault(data.run_id, data)
        newly = data.run_id not in self.holders
        self.holders[data.run_id] = self.holders.get(data.run_id, 0) + 1
        metrics.PLAYBACK_CACHE_BYTES.set(self.nbytes)
        if newly:
            self.mark_played([data.run_id])

    def mark_played(self, run_ids: list[str]) -> None:
        """Mark runs as played now (in a thread), and the held ones again every
        PLAYED_MARK_SECONDS while any is held, so that artifact retention keeps them
        (backtests/jobs/retention.py). A timer, not a task: nothing to await or collect."""
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, mark_all, run_ids).add_done_callback(marks_done)
        if self.marking is None:
            self.marking = loop.call_later(PLAYED_MARK_SECONDS, self.mark_held)

    def mark_held(self) -> None:
        """The timer: mark the runs still held, and keep the timer while there are any."""
        self.marking = None
        if self.holders:
            self.mark_played(list(self.holders))

    def release(self, run_id: str) -> None:
        """A player is done with the run; past the budget, unheld runs go."""
        left = self.holders.get(run_id, 0) - 1
        if left > 0:
            self.holders[run_id] = left
        else:
            self.holders.pop(run_id, None)
            if not self.holders and self.marking is not None:
                self.marking.cancel()  # nothing left to mark
                self.marking = None
        self.evict()

    def evict(self) -> None:
        """Drop the least recently used runs that no player holds while over budget
        (never the newest)."""
        budget = settings.PLAYBACK_CACHE_BYTES
        for run_id in list(self.runs)[:-1]:
            if self.nbytes <= budget:
                break
            if run_id not in self.holders:
                del self.runs[run_id]
        metrics.PLAYBACK_CACHE_BYTES.set(self.nbytes)

    def clear(self) -> None:
        """Forget every run (tests)."""
        self.runs.clear()
        self.holders.clear()
        self.loading.clear()
        self.loads = 0
        if self.marking is not None:
            self.marking.cancel()
            self.marking = None


def mark_all(run_ids: list[str]) -> None:
    """Touch each run's `.played` file (blocking: in a thread); storage trouble is logged."""
    for run_id in run_ids:
        try:
            retention.mark_played(run_id)
        except OSError as exc:  # retention may then prune it, nothing worse
            logger.warning("run %s not marked as played: %r", run_id, exc)


def marks_done(future: asyncio.Future) -> None:
    """Collect the marking's outcome (mark_all logs its own failures)."""
    if not future.cancelled() and future.exception() is not None:
        logger.warning("runs not marked as played: %r", future.exception())


CACHE = RunCache()
