"""Deterministic synthetic bars over a real exchange calendar (the demo's data).

One-minute bars: a seeded random walk on the exchange's regular session minutes (holidays
and early closes from `exchange_calendars`), with a plausible intraday shape: volatility
and volume are highest at the open, lowest at midday, and rise again into the close; each
session opens with an overnight gap. Daily bars: one per session, dated at midnight in
New York, a walk with a small drift. Not market data: datasets made from either are
marked synthetic.
"""

import functools
import hashlib
from datetime import date

import exchange_calendars
import numpy as np

from backtests.engine.bars import Bars

CALENDAR = "XNYS"
ZONE = "America/New_York"
MINUTE_VOLATILITY = 0.0006  # about 1.2% a day over 390 minutes
OVERNIGHT_VOLATILITY = 0.008


def calendar_version() -> str:
    """Which calendar made the bars: the exchange and the package's version."""
    return f"{CALENDAR}/exchange_calendars-{exchange_calendars.__version__}"


def utc_ns(column) -> np.ndarray:
    """A column of UTC times (pandas) as naive datetime64[ns] in UTC."""
    return column.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def session_minutes(start: date, end: date) -> tuple[np.ndarray, np.ndarray]:
    """Every regular-session minute from start to end (UTC ns), and its session's index."""
    calendar = exchange_calendars.get_calendar(CALENDAR, start=str(start), end=str(end))
    schedule = calendar.schedule  # only the sessions from start to end
    opens = utc_ns(schedule["open"])
    closes = utc_ns(schedule["close"])
    lengths = ((closes - opens) // np.timedelta64(1, "m")).astype(np.int64)
    session = np.repeat(np.arange(len(schedule)), lengths)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    minute = np.arange(len(session)) - first
    ts = opens.astype(np.int64)[session] + minute * 60_000_000_000
    return ts, session


@functools.lru_cache(maxsize=4)
def generate(symbol: str, start: date, end: date, start_price: float = 100.0) -> Bars:
    """Bars for `symbol` over the sessions from start to end; the same inputs, the same bars."""
    ts, session = session_minutes(start, end)
    n = len(ts)
    seed = int.from_bytes(hashlib.sha256(f"{symbol}:{start}:{end}".encode()).digest()[:8])
    rng = np.random.default_rng(seed)
    starts = np.flatnonzero(np.diff(session, prepend=-1))
    length = np.diff(np.append(starts, n))
    minute = np.arange(n) - np.repeat(starts, length)
    remaining = np.repeat(length, length) - 1 - minute
    shape = 1 + 1.5 * np.exp(-minute / 30) + 0.8 * np.exp(-remaining / 30)
    steps = rng.normal(0, MINUTE_VOLATILITY, n) * shape
    gaps = np.zeros(n)
    gaps[starts[1:]] = rng.normal(0, OVERNIGHT_VOLATILITY, len(starts) - 1)
    log_close = np.log(start_price) + np.cumsum(steps + gaps)
    close = np.round(np.exp(log_close), 2)
    open_ = np.round(np.exp(log_close - steps), 2)  # where the minute started, after a gap
    wick = np.abs(rng.normal(0, MINUTE_VOLATILITY / 2, (2, n))) * shape
    volume = np.round(2_000 * shape * rng.lognormal(0, 0.5, n))
    return priced_bars(ts, open_, close, wick, volume, "1m")


def priced_bars(
    ts: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    wick: np.ndarray,
    volume: np.ndarray,
    interval: str,
) -> Bars:
    """Bars whose highs and lows reach `wick` (two rows of fractions) beyond the open and
    close, in cents, never below one cent."""
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = np.maximum(np.round(top * (1 + wick[0]), 2), top)
    low = np.maximum(np.minimum(np.round(bottom * (1 - wick[1]), 2), bottom), 0.01)
    return Bars(ts, open_, high, low, close, volume, interval=interval, tz=ZONE)


DAILY_DRIFT = 0.0004  # about 10% a year
DAILY_VOLATILITY = 0.012


@functools.lru_cache(maxsize=4)
def generate_daily(symbol: str, start: date, end: date, start_price: float = 100.0) -> Bars:
    """One bar per session from start to end, dated at midnight New York time."""
    calendar = exchange_calendars.get_calendar(CALENDAR, start=str(start), end=str(end))
    sessions = calendar.schedule.index.tz_localize(ZONE).tz_convert("UTC")
    ts = sessions.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    n = len(ts)
    seed = int.from_bytes(hashlib.sha256(f"{symbol}:{start}:{end}:1d".encode()).digest()[:8])
    rng = np.random.default_rng(seed)
    returns = rng.normal(DAILY_DRIFT, DAILY_VOLATILITY, n)
    gaps = rng.normal(0, DAILY_VOLATILITY / 3, n)
    log_close = np.log(start_price) + np.cumsum(returns)
    close = np.round(np.exp(log_close), 2)
    open_ = np.round(np.exp(log_close - returns + gaps), 2)
    wick = np.abs(rng.normal(0, DAILY_VOLATILITY / 2, (2, n)))
    volume = np.round(5_000_000 * rng.lognormal(0, 0.4, n))
    return priced_bars(ts, open_, close, wick, volume, "1d")
