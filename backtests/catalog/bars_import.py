"""Bring a dataset's bars in, all or nothing, and never under a run that used other bars.

1. The arguments (dataset id, symbol, time zone, interval) are checked first; then every
   row of the file (engine/bar_files.py). Nothing is written before both pass.
2. The bars are written as Parquet to a temporary file in DATA_DIR and flushed.
3. In one transaction, with the dataset's row locked: a dataset that runs use is refused
   (unless the bars and their description are exactly the ones it has); the row is saved;
   then the file is renamed to its content address, `<sha256>.parquet`. A failure at any
   step removes the temporary file and leaves the old row and file as they were.
4. After the commit, the file the dataset had before is removed if nothing uses it.
"""

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backtests.catalog.validation import ID_PATTERN, SYMBOL_PATTERN
from backtests.engine import bar_files, intervals, timestamps
from backtests.engine import bars as engine_bars
from backtests.engine.problems import BarsError
from backtests.models import Dataset, Run

logger = logging.getLogger(__name__)


class DatasetInUse(Exception):
    """The dataset has runs: its bars cannot change under them."""

    def __init__(self, dataset_id: str, runs: int) -> None:
        super().__init__(
            f"dataset {dataset_id} has {runs} run{'s' if runs != 1 else ''}, computed on its "
            "bars: they cannot be replaced. Import the new bars under another dataset id."
        )
        self.dataset_id, self.runs = dataset_id, runs


class NotYourDataset(Exception):
    """The id belongs to a dataset that this uploader may not replace."""


class BadImport(ValueError):
    """Import arguments that are not valid: {field: rule}."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {rule}" for name, rule in problems.items()))
        self.problems = problems


@dataclass(frozen=True)
class Imported:
    """An import's dataset and what it did: "created", "replaced" or "unchanged"."""

    dataset: Dataset
    outcome: str


def bars_file(dataset: Dataset) -> Path:
    """Where a dataset's bars live, under DATA_DIR."""
    return Path(settings.DATA_DIR) / dataset.bars_path


def check_arguments(dataset_id: str, symbol: str, tz: str, interval: str | None) -> str:
    """The symbol upper-cased, once every argument is valid; BadImport names the others."""
    problems = {}
    if not ID_PATTERN.fullmatch(dataset_id):
        problems["dataset_id"] = "must be 1-64 characters: letters, digits, _ or - (not first)"
    symbol = symbol.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(symbol):
        problems["symbol"] = (
            "must be a ticker of 1-32 characters: letters, digits, . ^ _ - (like AAPL or EURUSD)"
        )
    try:
        timestamps.check_zone(tz)
    except BarsError as exc:
        problems["tz"] = str(exc)
    if interval is not None and interval not in intervals.INTERVALS:
        problems["interval"] = f"must be one of {', '.join(intervals.INTERVALS)}"
    if problems:
        raise BadImport(problems)
    return symbol


def runs_of(dataset_id: str) -> int:
    return Run.objects.filter(dataset_id=dataset_id).count()


def import_file(
    dataset_id: str,
    file: Path,
    symbol: str,
    tz: str = "UTC",
    interval: str | None = None,
    fmt: str | None = None,
    *,
    owner=None,
    public: bool = False,
    may_replace: Callable[[Dataset], bool] | None = None,
) -> Imported:
    """Check the arguments and every row of a CSV or Parquet file, then store the bars.

    A new dataset records `owner` (None: the operator's) and `public`; an existing one is
    replaced only if `may_replace(existing)`. BadImport, BarsError, DatasetInUse or
    NotYourDataset say why not; then nothing has changed.
    """
    symbol = check_arguments(dataset_id, symbol, tz, interval)
    # Read even when the dataset has runs: the very bars it has are a harmless repeat.
    series = bar_files.read(Path(file), tz, interval, fmt)
    return store_bars(
        dataset_id, series, symbol, owner=owner, public=public, may_replace=may_replace
    )


def local_date(ts_ns: int, tz: str):
    """The local calendar date of a timestamp in nanoseconds."""
    days = intervals.local_days(np.array([ts_ns], dtype=np.int64), tz)[0]
    return np.datetime64(int(days), "D").item()


def aware(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(int(ts_ns) // 1_000_000_000, UTC).replace(
        microsecond=(int(ts_ns) // 1000) % 1_000_000
    )


def store_bars(
    dataset_id: str,
    series: engine_bars.Bars,
    symbol: str,
    *,
    synthetic: bool = False,
    calendar_version: str = "",
    date_range: tuple | None = None,
    owner=None,
    public: bool = False,
    may_replace: Callable[[Dataset], bool] | None = None,
) -> Imported:
    """Write the bars and save the READY dataset row, all or nothing (the module's steps).

    The dataset's dates are the local dates of its first and last bars, or `date_range`:
    the calendar range the bars were made for.
    """
    data_dir = Path(settings.DATA_DIR)
    tmp, digest, size = engine_bars.write_temp(series, data_dir)
    values = {
        "symbol": symbol,
        "from_date": date_range[0] if date_range else local_date(series.ts[0], series.tz),
        "to_date": date_range[1] if date_range else local_date(series.ts[-1], series.tz),
        "status": Dataset.Status.READY,
        "size_bytes": size,
        "bars_path": f"{digest}.parquet",  # relative to DATA_DIR, which machines mount anywhere
        "bars_sha256": digest,
        "synthetic": synthetic,
        "products": intervals.products(series.interval),
        "interval": series.interval,
        "tz": series.tz,
        "bars": len(series),
        "first_bar_at": aware(series.ts[0]),
        "last_bar_at": aware(series.ts[-1]),
        "calendar_version": calendar_version,
    }
    try:
        with transaction.atomic():
            existing = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
            if existing is not None and may_replace is not None and not may_replace(existing):
                raise NotYourDataset(f"dataset {dataset_id} is another user's")
            if existing is None:
                values.update(owner=owner, public=public)
            if existing is not None and same_bars(existing, values):
                os.replace(tmp, data_dir / values["bars_path"])  # the same bytes
                return Imported(existing, "unchanged")
            in_use = runs_of(dataset_id) if existing is not None else 0
            if in_use:
                raise DatasetInUse(dataset_id, in_use)
            values["generated_at"] = timezone.now()
            dataset, created = Dataset.objects.update_or_create(
                dataset_id=dataset_id, defaults=values
            )
            # The row is saved; the file takes its name only now, before the commit: a
            # failed commit leaves an unused file, never a row without its file.
            os.replace(tmp, data_dir / values["bars_path"])
            if existing is not None and existing.bars_path != values["bars_path"]:
                old = existing.bars_path
                transaction.on_commit(lambda: remove_if_unused(old))
    finally:
        tmp.unlink(missing_ok=True)
    return Imported(dataset, "created" if created else "replaced")


def same_bars(dataset: Dataset, values: dict) -> bool:
    """Whether the dataset already has exactly these bars, described the same way."""
    keys = ("bars_sha256", "symbol", "interval", "tz", "synthetic")
    return dataset.status == Dataset.Status.READY and all(
        getattr(dataset, key) == values[key] for key in keys
    )


def remove_if_unused(bars_path: str) -> None:
    """Remove a bars file that no dataset and no run names any more."""
    if not bars_path or Dataset.objects.filter(bars_path=bars_path).exists():
        return
    digest = bars_path.removesuffix(".parquet")
    if Run.objects.filter(bars_sha256=digest).exists():
        return  # a run computed on it still plays it (playback reads it by its sha256)
    try:
        (Path(settings.DATA_DIR) / bars_path).unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("old bars file %s not removed: %r", bars_path, exc)
