"""Bars shaped like users' files, made by the tests: daily bars on the NYSE calendar,
hourly FX bars that open on Sunday evenings, crypto bars that trade every day, weekly and
monthly bars; prices on real ticks (cents, pips, satoshis) and at odd magnitudes."""

from datetime import date
from pathlib import Path

import exchange_calendars
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PANDAS_HEADER = ",Open,High,Low,Close,Volume"  # what DataFrame.to_csv() writes


def walk(n: int, start: float, volatility: float, places: int, seed: int) -> dict:
    """OHLCV columns of a seeded random walk, rounded to `places` decimals."""
    rng = np.random.default_rng(seed)
    close = np.round(start * np.exp(np.cumsum(rng.normal(0, volatility, n))), places)
    open_ = np.round(
        np.concatenate(([start], close[:-1])) * (1 + rng.normal(0, volatility / 4, n)), places
    )
    tick = 10.0**-places
    high = np.round(np.maximum(open_, close) + tick * rng.integers(0, 20, n), places)
    low = np.round(
        np.maximum(np.minimum(open_, close) - tick * rng.integers(0, 20, n), tick), places
    )
    low = np.minimum(low, np.minimum(open_, close))
    volume = rng.integers(100, 10_000, n)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def nyse_sessions(start: str, end: str) -> list[date]:
    """The NYSE's trading days from start to end."""
    calendar = exchange_calendars.get_calendar("XNYS", start=start, end=end)
    return [day.date() for day in calendar.schedule.index]


def lines(times: list[str], columns: dict, places: int) -> list[str]:
    """CSV data lines: time, then the prices with `places` decimals, then the volume."""
    out = []
    for i, when in enumerate(times):
        prices = ",".join(
            f"{columns[name][i]:.{places}f}" for name in ("open", "high", "low", "close")
        )
        out.append(f"{when},{prices},{int(columns['volume'][i])}")
    return out


def write_csv(
    path: Path, times: list[str], columns: dict, places: int, header: str = PANDAS_HEADER
) -> Path:
    path.write_text(header + "\n" + "\n".join(lines(times, columns, places)) + "\n")
    return path


def daily_nyse(
    path: Path, start: str = "2019-01-01", end: str = "2021-12-31", seed: int = 1
) -> Path:
    """Daily stock bars dated by session (GOOG-like, cents), pandas' header."""
    days = nyse_sessions(start, end)
    return write_csv(
        path, [d.isoformat() for d in days], walk(len(days), 1234.56, 0.015, 2, seed), 2
    )


def hourly_fx(path: Path, weeks: int = 12, seed: int = 2) -> Path:
    """Hourly EURUSD-like bars (5 decimals) from Sunday 22:00 to Friday 21:00 UTC."""
    start = np.datetime64("2017-04-02T22:00")  # a Sunday evening
    hours = start + np.arange(weeks * 7 * 24).astype("timedelta64[h]")
    weekday = (hours.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 0 is Monday
    hour = (hours.astype("datetime64[h]").astype(np.int64)) % 24
    open_market = ~(
        (weekday == 5) | ((weekday == 4) & (hour >= 21)) | ((weekday == 6) & (hour < 22))
    )
    times = [str(t).replace("T", " ") + ":00" for t in hours[open_market]]
    return write_csv(path, times, walk(len(times), 1.0716, 0.0008, 5, seed), 5)


def crypto_daily(path: Path, days: int = 400, seed: int = 3) -> Path:
    """Daily BTC-like bars every calendar day, weekends included, times with a Z."""
    first = np.datetime64("2021-01-01")
    times = [f"{first + i}T00:00:00Z" for i in range(days)]
    return write_csv(
        path, times, walk(days, 29374.15, 0.04, 2, seed), 2, "timestamp,open,high,low,close,volume"
    )


def weekly(path: Path, weeks: int = 120, seed: int = 4) -> Path:
    """Weekly bars dated on Mondays."""
    first = np.datetime64("2015-01-05")  # a Monday
    times = [str(first + 7 * i) for i in range(weeks)]
    return write_csv(path, times, walk(weeks, 87.5, 0.03, 2, seed), 2)


def monthly(path: Path, months: int = 60, seed: int = 5) -> Path:
    """Monthly bars dated on each month's last day (BTCUSD-like, large prices)."""
    ends = (np.datetime64("2013-01") + np.arange(1, months + 1)).astype("datetime64[D]") - 1
    return write_csv(path, [str(d) for d in ends], walk(months, 104_300.5, 0.2, 2, seed), 2)


def minute_parquet(path: Path, n: int = 600, seed: int = 6) -> Path:
    """One-minute bars in Parquet, naive times in New York, upper-case column names."""
    times = np.datetime64("2023-03-01T09:30") + np.arange(n).astype("timedelta64[m]")
    columns = walk(n, 0.00002345, 0.002, 8, seed)  # a coin priced in satoshis
    table = pa.table(
        {
            "Date": pa.array(times.astype("datetime64[s]")),
            **{name.title(): pa.array(values) for name, values in columns.items()},
        }
    )
    pq.write_table(table, path)
    return path
