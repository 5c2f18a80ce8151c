"""OHLCV bars at any interval: read (CSV or Parquet), validate every row, write Parquet.

Columns: `ts` (UTC), `open`, `high`, `low`, `close`, `volume`. In memory a series is a
`Bars` of numpy arrays, `ts` as int64 nanoseconds since the epoch (UTC), with its
interval (intervals.py) and the time zone its dates are read in. Reading files is in
bar_files.py; this module holds the rules and the service's own Parquet files.
"""

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from backtests.engine import intervals
from backtests.engine.problems import MAX_PROBLEMS, BarsError, Problem

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
DEFAULT_POSITIONS = {name: position for position, name in enumerate(COLUMNS, start=1)}

SCHEMA = pa.schema(
    [("ts", pa.timestamp("ns", tz="UTC"))] + [(name, pa.float64()) for name in COLUMNS[1:]]
)

# zstd throughout; times delta-encoded (bars a fixed step apart encode to almost nothing:
# the file is half the size, and faster to write and to read than with dictionaries).
PARQUET_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": list(COLUMNS[1:]),
    "column_encoding": {"ts": "DELTA_BINARY_PACKED"},
}

__all__ = ["COLUMNS", "Bars", "BarsChanged", "BarsError", "Problem", "load", "validate", "write"]


@dataclass(frozen=True)
class Bars:
    """A bar series: equal-length numpy arrays, ts in int64 UTC nanoseconds."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    interval: str = "1m"
    tz: str = "UTC"

    def __len__(self) -> int:
        return len(self.ts)

    def to_table(self) -> pa.Table:
        """The bars as an Arrow table in the file schema, interval and zone as metadata."""
        arrays = [pa.array(self.ts.view("datetime64[ns]"), type=SCHEMA.field("ts").type)]
        arrays += [pa.array(getattr(self, name)) for name in COLUMNS[1:]]
        schema = SCHEMA.with_metadata({"interval": self.interval, "tz": self.tz})
        return pa.Table.from_arrays(arrays, schema=schema)


def rule_checks(bars: Bars) -> list[tuple[np.ndarray, str, str]]:
    """(bad rows mask, column, rule) for every row rule (docs/engine.md)."""
    checks: list[tuple[np.ndarray, str, str]] = []
    ts = bars.ts
    order = np.zeros(len(ts), dtype=bool)
    order[1:] = ts[1:] <= ts[:-1]
    checks.append((order, "ts", "not after the previous row (duplicate or out of order)"))
    for name in PRICES:
        values = getattr(bars, name)
        checks.append((~(np.isfinite(values) & (values > 0)), name, "must be > 0"))
    top = np.maximum(bars.open, bars.close)
    bottom = np.minimum(bars.open, bars.close)
    checks.append((bars.high < top, "high", "must be >= max(open, close)"))
    checks.append((bars.low > bottom, "low", "must be <= min(open, close)"))
    volume = bars.volume
    checks.append((~(np.isfinite(volume) & (volume >= 0)), "volume", "must be >= 0"))
    return checks


def validate(bars: Bars, positions: dict[str, int] | None = None) -> None:
    """Check every row (vectorised); raise BarsError naming the first bad rows."""
    positions = positions or DEFAULT_POSITIONS
    problems = []
    for mask, column, rule in rule_checks(bars):
        values = getattr(bars, column)
        for row in np.flatnonzero(mask)[:MAX_PROBLEMS]:
            problems.append(
                Problem(
                    rule, int(row) + 1, column, positions[column], describe(column, values[row])
                )
            )
    if problems:
        problems.sort(key=lambda p: p.row)
        raise BarsError("bad rows (row 1 is the first data row):", problems[:MAX_PROBLEMS])


def checked_interval(ts: np.ndarray, tz: str, interval: str | None, position: int = 1) -> str:
    """The bars' interval (given, or inferred), every bar checked on its grid."""
    local = intervals.local_ns(ts, tz)
    if interval is None:
        interval = intervals.infer(local)
        if interval is None:
            if len(ts) < 2:
                raise BarsError("one bar cannot tell its interval: give the interval")
            raise BarsError(
                "cannot tell the bar interval: no two bars in a row are "
                f"{', '.join(intervals.INTERVALS)} apart (the most common step is "
                f"{intervals.most_common_step(local)}); give the interval"
            )
    elif interval not in intervals.INTERVALS:
        raise BarsError(
            f"unknown interval {interval!r}: use one of {', '.join(intervals.INTERVALS)}"
        )
    off = intervals.off_grid(local, interval)
    if off is not None:
        raise BarsError(
            f"bad rows for {interval} bars (row 1 is the first data row):",
            [
                Problem(off.rule, int(row) + 1, "ts", position, describe("ts", ts[row]))
                for row in off.rows[:MAX_PROBLEMS]
            ],
        )
    return interval


def describe(column: str, value) -> str:
    """A value as a person reads it (timestamps in ISO form)."""
    if column == "ts":
        return f"{np.datetime64(int(value), 'ns')}Z"
    return repr(float(value))


def read_parquet(path: Path | pa.NativeFile, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file as a table. ParquetFile, not read_table: read_table imports Arrow's
    dataset layer, which costs a process about 270 ms and 50 MiB on its first read."""
    return pq.ParquetFile(path).read(columns=columns)


def load(path: Path, expected_sha256: str = "", interval: str = "1m", tz: str = "UTC") -> Bars:
    """Read a Parquet bars file this service wrote (already validated on import).

    With `expected_sha256`, the file's bytes are hashed as they are read, and other
    bytes than those raise BarsChanged. The interval and zone are the file's own;
    `interval` and `tz` are for files written before files kept them.
    """
    if expected_sha256:
        data = Path(path).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != expected_sha256:
            raise BarsChanged(path, expected_sha256, digest)
        table = read_parquet(pa.BufferReader(data), list(COLUMNS))
    else:
        table = read_parquet(path, list(COLUMNS))
    meta = table.schema.metadata or {}
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    columns = {name: table.column(name).to_numpy() for name in COLUMNS[1:]}
    return Bars(
        ts=ts.astype(np.int64),
        **columns,
        interval=meta.get(b"interval", interval.encode()).decode(),
        tz=meta.get(b"tz", tz.encode()).decode(),
    )


class BarsChanged(Exception):
    """A bars file whose bytes are not the ones recorded: it was replaced."""

    def __init__(self, path: Path, expected: str, found: str) -> None:
        super().__init__(
            f"{Path(path).name} is not the bars file recorded (sha256 {expected[:12]}..., "
            f"found {found[:12]}...)"
        )
        self.expected, self.found = expected, found


def write_temp(bars: Bars, directory: Path) -> tuple[Path, str, int]:
    """Write Parquet (zstd) to a new temporary file in `directory`, flushed to disk;
    return its path, sha256 and size. The caller renames it into place (or removes it)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", suffix=".parquet", dir=directory)
    os.close(fd)
    try:
        buffer = io.BytesIO()
        pq.write_table(bars.to_table(), buffer, **PARQUET_OPTIONS)
        data = buffer.getbuffer()
        with open(tmp_name, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        return Path(tmp_name), hashlib.sha256(data).hexdigest(), len(data)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write(bars: Bars, path: Path) -> tuple[str, int]:
    """Write Parquet (zstd) by temp file and rename; return its sha256 and size."""
    path = Path(path)
    tmp, digest, size = write_temp(bars, path.parent)
    os.replace(tmp, path)
    return digest, size


def sha256_of(path: Path) -> tuple[str, int]:
    """A file's sha256 (hex) and size in bytes."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
