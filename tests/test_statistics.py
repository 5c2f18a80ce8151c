"""The statistics set, each recomputed here independently: plain loops and pandas over
the run's equity, bars and trades."""

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtests.engine import bar_files, metrics, strategies
from backtests.engine.simulation import STARTING_CAPITAL, Costs, simulate
from backtests.engine.trades import trades
from tests import bar_shapes


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = bar_shapes.daily_nyse(tmp_path_factory.mktemp("bars") / "d.csv")
    bars = bar_files.read(Path(path), tz="America/New_York")
    targets = strategies.signal("sma_long_short", {"fast": 5, "slow": 20}, bars)
    sim = simulate(bars, targets, Costs(0.02, 1))
    values, reasons = metrics.compute(sim, bars)
    return bars, sim, values, reasons


def test_exposure_and_buy_and_hold(run) -> None:
    bars, sim, values, _ = run
    assert values["exposure_time"] == pytest.approx(
        sum(1 for q in sim.position if q != 0) / len(bars)
    )
    assert values["buy_and_hold_return"] == pytest.approx(bars.close[-1] / bars.close[0] - 1)


def test_annual_figures_from_daily_returns(run) -> None:
    bars, sim, values, _ = run
    curve = pd.Series(sim.equity, index=pd.to_datetime(bars.ts, utc=True).tz_convert(bars.tz))
    daily = curve.groupby(curve.index.date).last()
    returns = pd.concat([pd.Series([STARTING_CAPITAL]), daily.reset_index(drop=True)]).pct_change()
    returns = returns.iloc[1:]
    annual = (sim.equity[-1] / STARTING_CAPITAL) ** (252 / len(returns)) - 1
    assert values["annual_return"] == pytest.approx(annual, rel=1e-9)
    assert values["annual_volatility"] == pytest.approx(returns.std(ddof=1) * math.sqrt(252))
    assert values["calmar"] == pytest.approx(annual / abs(values["max_drawdown"]))


def test_drawdown_episodes(run) -> None:
    bars, sim, values, _ = run
    peak, peak_bar, episodes = STARTING_CAPITAL, 0, []
    current = None  # [deepest, peak bar]
    for i, equity in enumerate(sim.equity):
        if equity >= peak:
            if current is not None:
                episodes.append((current[0], int(bars.ts[i] - bars.ts[current[1]]) // 10**9))
                current = None
            peak, peak_bar = equity, i
        else:
            fall = equity / peak - 1
            current = [min(fall, current[0]), current[1]] if current else [fall, peak_bar]
    if current is not None:
        episodes.append((current[0], int(bars.ts[-1] - bars.ts[current[1]]) // 10**9))
    assert values["avg_drawdown"] == pytest.approx(statistics.fmean(d for d, _ in episodes))
    assert values["max_drawdown_duration_s"] == max(s for _, s in episodes)


def test_trade_figures(run) -> None:
    _, sim, values, _ = run
    closed = [t for t in trades(sim) if t.closed]
    returns = [t.pnl / abs(t.entry_qty * t.entry_price) for t in closed]
    pnl = [t.pnl for t in closed]
    wins, losses = [p for p in pnl if p > 0], [p for p in pnl if p < 0]
    assert values["trades"] == len(closed) > 10
    assert (values["best_trade"], values["worst_trade"]) == (max(returns), min(returns))
    assert values["expectancy"] == pytest.approx(statistics.fmean(returns))
    assert values["hit_rate"] == pytest.approx(len(wins) / len(closed))  # the win rate
    assert values["profit_factor"] == pytest.approx(sum(wins) / abs(sum(losses)))
    sqn = math.sqrt(len(pnl)) * statistics.fmean(pnl) / statistics.stdev(pnl)
    assert values["sqn"] == pytest.approx(sqn)
    w = len(wins) / len(pnl)
    ratio = statistics.fmean(wins) / abs(statistics.fmean(losses))
    assert values["kelly"] == pytest.approx(w - (1 - w) / ratio)


def test_undefined_statistics_are_null_with_a_reason() -> None:
    flat = np.full(50, 10.0)
    from backtests.engine.bars import Bars

    bars = Bars(np.arange(50) * 86_400_000_000_000, flat, flat, flat, flat, flat, "1d")
    sim = simulate(bars, np.zeros(50), Costs(0, 0))
    values, reasons = metrics.compute(sim, bars)
    for name in ("best_trade", "profit_factor", "sqn", "kelly", "avg_drawdown", "calmar"):
        assert values[name] is None and reasons[name]
    assert values["trades"] == 0 and values["exposure_time"] == 0
