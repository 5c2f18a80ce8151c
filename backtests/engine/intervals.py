"""Bar intervals: their names and lengths, local times, inference, and the grid bars lie on.

Times are int64 UTC nanoseconds; the grid is read in the dataset's time zone, so that
daily bars at midnight in New York stay on it across daylight saving, and hourly bars
that open at 9:30 are on an hourly grid with a 30-minute phase. docs/engine.md has the
rules.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MINUTE_NS = 60 * 1_000_000_000
DAY_NS = 24 * 60 * MINUTE_NS
# Intraday intervals: bars sit on multiples of the length (from local midnight) plus a
# phase that every bar shares.
INTRADAY_NS = {
    "1m": MINUTE_NS,
    "5m": 5 * MINUTE_NS,
    "15m": 15 * MINUTE_NS,
    "30m": 30 * MINUTE_NS,
    "1h": 60 * MINUTE_NS,
    "4h": 240 * MINUTE_NS,
}
# Calendar intervals: at most one bar per local date, ISO week or month, every bar at the
# same local time of day.
CALENDAR = ("1d", "1w", "1mo")
INTERVALS = (*INTRADAY_NS, *CALENDAR)
# The nominal length of a bar, in seconds: what playback's speed counts (a month is a
# twelfth of a Gregorian year).
SECONDS = {
    **{name: length // 1_000_000_000 for name, length in INTRADAY_NS.items()},
    "1d": 86_400,
    "1w": 7 * 86_400,
    "1mo": 2_629_746,
}
# Return periods a year for the annualised figures (docs/engine.md): daily returns on
# every interval up to a day, bar returns for weeks and months.
WEEKLY_PERIODS, MONTHLY_PERIODS = 52, 12
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class OffGrid:
    """Rows (0-based) that are not on the interval's grid, and why."""

    rows: np.ndarray
    rule: str


def local_ns(ts: np.ndarray, tz: str) -> np.ndarray:
    """UTC nanoseconds as local wall-clock nanoseconds in `tz` (naive)."""
    if tz == "UTC":
        return ts
    utc = pa.array(ts, type=pa.int64()).cast(pa.timestamp("ns", tz=tz))
    return pc.local_timestamp(utc).cast(pa.int64()).to_numpy(zero_copy_only=False)


def local_days(ts: np.ndarray, tz: str) -> np.ndarray:
    """Each bar's local date, as days since 1970-01-01."""
    return local_ns(ts, tz) // DAY_NS


def has_weekend_bars(ts: np.ndarray, tz: str) -> bool:
    """Whether any bar falls on a local Saturday or Sunday (1970-01-01 was a Thursday)."""
    weekday = (local_days(ts, tz) + 3) % 7  # 0 Monday .. 6 Sunday
    return bool(np.any(weekday >= 5))


def infer(local: np.ndarray) -> str | None:
    """The interval most consecutive bars are apart (local time), or None if none fits."""
    if len(local) < 2:
        return None
    steps = np.diff(local)
    counts = {name: int(np.count_nonzero(steps == length)) for name, length in INTRADAY_NS.items()}
    counts["1d"] = int(np.count_nonzero(steps == DAY_NS))
    counts["1w"] = int(np.count_nonzero(steps == 7 * DAY_NS))
    counts["1mo"] = int(np.count_nonzero((steps >= 28 * DAY_NS) & (steps <= 31 * DAY_NS)))
    best = max(counts, key=lambda name: counts[name])
    return best if counts[best] else None


def most_common_step(local: np.ndarray) -> str:
    """The most common step between bars, as a person reads it (for a refusal)."""
    values, counts = np.unique(np.diff(local), return_counts=True)
    seconds = int(values[np.argmax(counts)]) // 1_000_000_000
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def off_grid(local: np.ndarray, interval: str) -> OffGrid | None:
    """The bars that are not on the interval's grid (the first bar sets the phase)."""
    if interval in INTRADAY_NS:
        length = INTRADAY_NS[interval]
        phase = int(local[0]) % length
        if phase % MINUTE_NS:
            return OffGrid(np.array([0]), "not on a whole minute")
        bad = np.flatnonzero(local % length != phase)
        return OffGrid(bad, off_phase_rule(interval, phase)) if len(bad) else None
    time_of_day = local % DAY_NS
    bad = np.flatnonzero(time_of_day != time_of_day[0])
    if len(bad):
        clock = hhmm(int(time_of_day[0]))
        return OffGrid(
            bad, f"not at {clock} local time like row 1 (one time of day per {interval} bar)"
        )
    period = calendar_period(local // DAY_NS, interval)
    repeated = np.flatnonzero(np.diff(period) == 0) + 1
    if len(repeated):
        unit = {"1d": "date", "1w": "week", "1mo": "month"}[interval]
        return OffGrid(repeated, f"a second bar in the same {unit} (one bar per {unit})")
    return None


def off_phase_rule(interval: str, phase: int) -> str:
    """Why an intraday bar is off its grid."""
    if phase == 0:
        return f"not on the {interval} grid"
    return f"not on the {interval} grid ({phase // MINUTE_NS} minutes past it, like row 1)"


def calendar_period(days: np.ndarray, interval: str) -> np.ndarray:
    """Each local date's period number: the date, its week (Monday first) or its month."""
    if interval == "1d":
        return days
    if interval == "1w":
        return (days + 3) // 7  # weeks that start on a Monday
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def hhmm(nanoseconds: int) -> str:
    """A time of day in nanoseconds as HH:MM."""
    minutes = nanoseconds // MINUTE_NS
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def products(interval: str) -> list[str]:
    """What a dataset holds, for its products list: BARS_1M, BARS_1D, ..."""
    return [f"BARS_{interval.upper()}"]
