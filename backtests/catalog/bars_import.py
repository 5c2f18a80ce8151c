"""Bring a dataset's bars in: validate, write the Parquet file, then record it on the Dataset."""

from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backtests.engine import bars as engine_bars
from backtests.models import Dataset


def bars_file(dataset_id: str) -> Path:
    """Where a dataset's bars live, under DATA_DIR."""
    return Path(settings.DATA_DIR) / f"{dataset_id}.parquet"


def utc_date(ts_ns: int):
    """The UTC calendar date of a timestamp in nanoseconds."""
    return np.datetime64(int(ts_ns), "ns").astype("datetime64[D]").item()


def store_bars(
    dataset_id: str,
    series: engine_bars.Bars,
    symbol: str,
    *,
    synthetic: bool = False,
    calendar_version: str = "",
    tz: str | None = None,
    date_range: tuple | None = None,
) -> Dataset:
    """Write the bars (temp file and rename), then create or update the READY Dataset row.

    The dataset's dates are those of its first and last bars (UTC), or `date_range`: the
    calendar range the bars were made for.
    """
    path = bars_file(dataset_id)
    digest, size = engine_bars.write(series, path)
    values = {
        "symbol": symbol,
        "from_date": date_range[0] if date_range else utc_date(series.ts[0]),
        "to_date": date_range[1] if date_range else utc_date(series.ts[-1]),
        "status": Dataset.Status.READY,
        "size_bytes": size,
        "bars_path": path.name,  # relative to DATA_DIR, which machines may mount elsewhere
        "bars_sha256": digest,
        "synthetic": synthetic,
        "generated_at": timezone.now(),
        "products": ["BARS_1M"],
    }
    if calendar_version:
        values["calendar_version"] = calendar_version
    if tz:
        values["tz"] = tz
    with transaction.atomic():
        dataset, _ = Dataset.objects.update_or_create(dataset_id=dataset_id, defaults=values)
    return dataset


def import_file(dataset_id: str, file: Path, symbol: str, tz: str = "UTC") -> Dataset:
    """Read and check a CSV or Parquet file (BarsError if bad), then store it."""
    series = engine_bars.read(file, tz=tz)
    return store_bars(dataset_id, series, symbol)
