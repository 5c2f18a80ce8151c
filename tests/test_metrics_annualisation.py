"""Sharpe and Sortino from daily returns (weekly and monthly bars: bar returns), recomputed
here independently with pandas; the same prices give the same Sharpe at any interval."""

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtests.engine import bar_files, metrics, strategies, synthetic
from backtests.engine.bars import Bars
from backtests.engine.simulation import STARTING_CAPITAL, Costs, simulate
from tests import bar_shapes

ORDINARY = Costs(0.02, 1)
bars_columns = ("ts", "open", "high", "low", "close", "volume")


def independent_ratios(bars: Bars, equity: np.ndarray, per_year: int, daily: bool) -> tuple:
    """(Sharpe, Sortino) by pandas: equity at each local date's last bar (or every bar)."""
    index = pd.to_datetime(bars.ts, utc=True).tz_convert(bars.tz)
    curve = pd.Series(equity, index=index)
    if daily:
        curve = curve.groupby(curve.index.date).last()
    returns = pd.concat([pd.Series([STARTING_CAPITAL]), curve.reset_index(drop=True)]).pct_change()
    returns = returns.iloc[1:]
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(per_year)
    sortino = returns.mean() / math.sqrt((returns.clip(upper=0) ** 2).mean()) * math.sqrt(per_year)
    return sharpe, sortino


def run(
    bars: Bars, strategy_id: str, params: dict, costs: Costs = ORDINARY
) -> tuple[dict, np.ndarray]:
    sim = simulate(bars, strategies.signal(strategy_id, params, bars), costs)
    values, _ = metrics.compute(sim, bars)
    return values, sim.equity


@pytest.mark.parametrize(
    ("make", "tz", "per_year", "daily"),
    [
        (bar_shapes.daily_nyse, "America/New_York", 252, True),
        (bar_shapes.hourly_fx, "UTC", 365, True),  # Sunday opens: calendar days
        (bar_shapes.crypto_daily, "UTC", 365, True),
        (bar_shapes.weekly, "UTC", 52, False),
        (bar_shapes.monthly, "UTC", 12, False),
    ],
)
def test_ratios_match_an_independent_recomputation(tmp_path: Path, make, tz, per_year, daily):
    bars = bar_files.read(make(tmp_path / "bars.csv"), tz=tz)
    values, equity = run(bars, "sma_crossover", {"fast": 3, "slow": 8})
    sharpe, sortino = independent_ratios(bars, equity, per_year, daily)
    assert values["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    assert values["sortino"] == pytest.approx(sortino, rel=1e-9)


def test_minute_bars_use_new_york_trading_days() -> None:
    bars = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 4, 28), 130.0)
    values, equity = run(bars, "sma_crossover", {"fast": 20, "slow": 50})
    sharpe, _ = independent_ratios(bars, equity, 252, True)
    assert values["sharpe"] == pytest.approx(sharpe, rel=1e-9)


def test_a_daily_strategy_has_an_ordinary_daily_sharpe() -> None:
    bars = synthetic.generate_daily("SPY", date(2014, 1, 1), date(2023, 12, 31), 180.0)
    values, equity = run(bars, "sma_crossover", {"fast": 10, "slow": 30})
    assert abs(values["sharpe"]) < 3  # not x sqrt(390), as minute-bar annualisation gave
    assert values["sharpe"] == pytest.approx(independent_ratios(bars, equity, 252, True)[0])


def hourly_and_daily(days: int = 60) -> tuple[Bars, Bars]:
    """The same prices as hourly bars (weekdays, 10:00 to 16:00 UTC) and as daily bars:
    flat on the first day, so that buy and hold enters both at the same price."""
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2023-01-02", periods=days)
    hours = np.array([d + pd.Timedelta(hours=h) for d in dates for h in range(10, 17)])
    n = len(hours)
    close = np.round(50 * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
    close[:7] = 50.0
    open_ = np.concatenate(([50.0], close[:-1]))
    ts = pd.DatetimeIndex(hours).tz_localize("UTC").as_unit("ns").asi8
    hourly = Bars(
        ts, open_, np.maximum(open_, close), np.minimum(open_, close), close, np.ones(n), "1h"
    )
    day = np.repeat(np.arange(days), 7)
    first, last = np.arange(days) * 7, np.arange(days) * 7 + 6
    high = np.maximum.reduceat(hourly.high, first)
    low = np.minimum.reduceat(hourly.low, first)
    daily_ts = pd.DatetimeIndex(dates).tz_localize("UTC").as_unit("ns").asi8
    daily = Bars(
        daily_ts, open_[first], high, low, close[last], np.bincount(day).astype(float), "1d"
    )
    return hourly, daily


def test_the_same_prices_give_the_same_sharpe_at_any_interval() -> None:
    hourly, daily = hourly_and_daily()
    # Without costs: slippage scales with a bar's range, which differs by interval.
    by_hour, _ = run(hourly, "buy_and_hold", {}, Costs(0, 0))
    by_day, _ = run(daily, "buy_and_hold", {}, Costs(0, 0))
    assert by_hour["sharpe"] == pytest.approx(by_day["sharpe"], rel=1e-12)
    assert by_hour["sortino"] == pytest.approx(by_day["sortino"], rel=1e-12)
    assert by_hour["total_return"] == pytest.approx(by_day["total_return"], rel=1e-12)


def test_a_single_day_has_no_sharpe() -> None:
    two_days = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 2), 130.0)
    one = slice(0, 390)
    bars = Bars(*(getattr(two_days, k)[one] for k in bars_columns), tz=two_days.tz)
    sim = simulate(bars, strategies.signal("buy_and_hold", {}, bars), Costs(0, 0))
    values, reasons = metrics.compute(sim, bars)
    assert values["sharpe"] is None
    assert reasons["sharpe"] == "daily returns do not vary (no position, or fewer than two days)"
