"""A bars file's `ts` column as UTC nanoseconds: ISO 8601 text, timestamps or dates.

Every time is read the same way: with an offset (`Z`, `+05:30`) it keeps it; without one
it is local time in the dataset's zone. A file mixes the two only by mistake, so that is
refused, naming the rows. Times must fall in SUPPORTED (docs/engine.md).
"""

import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backtests.engine.problems import MAX_PROBLEMS, BarsError, Problem

SUPPORTED = ("1900-01-01", "2199-12-31")  # inclusive, as dates
_LOW, _HIGH = np.datetime64(SUPPORTED[0], "D"), np.datetime64(SUPPORTED[1], "D") + 1

Where = Callable[..., Problem]  # (rule, row=None, value=None) -> a Problem in column ts


@cache
def time_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows."""
    return frozenset(zoneinfo.available_timezones())


def check_zone(tz: str) -> None:
    """Refuse a zone that is not an IANA name."""
    if tz not in time_zones():
        raise BarsError(
            f"unknown time zone {tz!r}: give an IANA name such as UTC or America/New_York"
        )


def to_utc_ns(column: pa.ChunkedArray, tz: str, where: Where) -> np.ndarray:
    """The column as int64 UTC nanoseconds; BarsError names the rows that cannot be."""
    nulls = column.null_count
    if nulls:
        rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
        raise_rows([where("missing", row=r + 1) for r in rows[:MAX_PROBLEMS]])
    kind = column.type
    if pa.types.is_integer(kind):  # basic ISO 8601 dates (20230103), as CSV infers them
        column, kind = column.cast(pa.string()), pa.string()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        column = parse_text(column, where)
    elif pa.types.is_date(kind):
        column = column.cast(pa.timestamp("s"))
    elif not pa.types.is_timestamp(column.type):
        raise_rows([where(f"times must be ISO 8601 text, timestamps or dates, not {kind}")])
    check_range(column, where)
    if column.type.tz is None:
        column = place_in_zone(column.cast(pa.timestamp("ns")), tz, where)
    return column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy().astype(np.int64)


def parse_text(column: pa.ChunkedArray, where: Where) -> pa.ChunkedArray:
    """ISO 8601 text as timestamps: Arrow's parser first (all without an offset, or all
    with one), Python's for the rest and for naming bad rows."""
    for kind in (pa.timestamp("us"), pa.timestamp("us", tz="UTC")):
        try:
            return column.cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return parse_text_slowly(column.to_pylist(), where)


def parse_text_slowly(values: list[str], where: Where) -> pa.ChunkedArray:
    """Each value through datetime.fromisoformat; one kind (offset or not) throughout."""
    parsed: list[datetime] = []
    bad: list[Problem] = []
    first_aware: bool | None = None
    for row, value in enumerate(values, start=1):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            bad.append(where("not an ISO 8601 time", row=row, value=repr(value)))
        else:
            aware = when.tzinfo is not None
            if first_aware is None:
                first_aware = aware
            elif aware != first_aware:
                bad.append(where(mixed_rule(aware), row=row, value=repr(value)))
            parsed.append(when)
        if len(bad) == MAX_PROBLEMS:
            break
    if bad:
        raise_rows(bad)
    if first_aware:
        utc = [when.astimezone(UTC).replace(tzinfo=None) for when in parsed]
        return pa.chunked_array([pa.array(utc, type=pa.timestamp("us")).cast(pa.int64())]).cast(
            pa.timestamp("us", tz="UTC")
        )
    return pa.chunked_array([pa.array(parsed, type=pa.timestamp("us"))])


def mixed_rule(aware: bool) -> str:
    """Why a row's time does not go with the first row's."""
    if aware:
        return (
            "has a UTC offset, but row 1 has none: give every time an offset, or none "
            "(times without one are read in the dataset's time zone)"
        )
    return (
        "has no UTC offset, but row 1 has one: give every time an offset, or none "
        "(times without one are read in the dataset's time zone)"
    )


def check_range(column: pa.ChunkedArray, where: Where) -> None:
    """Refuse times outside SUPPORTED (in the column's own unit: no overflow)."""
    unit = column.type.unit
    ints = column.cast(pa.int64()).to_numpy()
    low = _LOW.astype(f"datetime64[{unit}]").astype(np.int64)
    high = _HIGH.astype(f"datetime64[{unit}]").astype(np.int64)
    rows = np.flatnonzero((ints < low) | (ints >= high))
    if len(rows):
        rule = f"outside the supported dates, {SUPPORTED[0]} to {SUPPORTED[1]}"
        raise_rows(
            [
                where(rule, row=r + 1, value=readable(int(ints[r]), unit))
                for r in rows[:MAX_PROBLEMS]
            ]
        )


def place_in_zone(local: pa.ChunkedArray, tz: str, where: Where) -> pa.ChunkedArray:
    """Naive local times in `tz` as aware times; a time that a clock change makes
    ambiguous or skips is refused, naming its rows."""
    try:
        return pc.assume_timezone(local, timezone=tz, ambiguous="raise", nonexistent="raise")
    except pa.ArrowInvalid:
        pass
    earliest = pc.assume_timezone(local, timezone=tz, ambiguous="earliest", nonexistent="earliest")
    latest = pc.assume_timezone(local, timezone=tz, ambiguous="latest", nonexistent="latest")
    differ = pc.not_equal(earliest, latest).to_numpy(zero_copy_only=False)
    values = local.cast(pa.int64()).to_numpy()
    rule = f"occurs twice or not at all in {tz} (a clock change): give times with their UTC offset"
    raise_rows(
        [
            where(rule, row=r + 1, value=readable(int(values[r]), "ns"))
            for r in np.flatnonzero(differ)[:MAX_PROBLEMS]
        ]
    )
    raise AssertionError("unreachable")


def readable(value: int, unit: str) -> str:
    """A time in `unit` as ISO text, to the second when it has no fraction."""
    when = np.datetime64(value, unit)
    whole = when.astype("datetime64[s]")
    return str(whole if whole == when else when)


def raise_rows(problems: list[Problem]) -> None:
    """Refuse the file with these problems."""
    raise BarsError("bad rows (row 1 is the first data row):", problems)
