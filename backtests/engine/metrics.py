"""A run's metrics from its equity curve and fills; formulas in docs/engine.md.

No figure is ever NaN or infinite: one that is undefined for a run is None, and
`null_reasons` says why.
"""

import math
from dataclasses import dataclass

import numpy as np

from backtests.engine import intervals
from backtests.engine.bars import Bars
from backtests.engine.memo import memoized
from backtests.engine.simulation import STARTING_CAPITAL, Simulation
from backtests.engine.trades import Trade, trades

# Trading days a year, and calendar days for markets that trade at weekends.
TRADING_DAYS, CALENDAR_DAYS = 252, 365
YEAR_NS = 365.25 * 24 * 3600 * 1e9
ADJECTIVES = {"day": "daily", "week": "weekly", "month": "monthly"}

FIELDS = (
    "total_return",
    "cagr",
    "max_drawdown",
    "sharpe",
    "sortino",
    "hit_rate",
    "avg_win",
    "avg_loss",
    "turnover",
    "slippage_share",
    "fees_paid",
    # The statistics set people compare against (docs/engine.md): hit_rate is the win rate.
    "exposure_time",
    "buy_and_hold_return",
    "annual_return",
    "annual_volatility",
    "calmar",
    "avg_drawdown",
    "max_drawdown_duration_s",
    "trades",
    "best_trade",
    "worst_trade",
    "expectancy",
    "profit_factor",
    "sqn",
    "kelly",
)


@dataclass(frozen=True)
class Periods:
    """The returns the annualised figures use, and how many such periods make a year."""

    returns: np.ndarray
    per_year: int
    unit: str  # "day", "week" or "month"


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Each bar's return on the previous bar's equity (the first on the starting capital)."""
    previous = np.concatenate(([STARTING_CAPITAL], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(previous > 0, equity / previous - 1, 0.0)


def day_ends(ts: np.ndarray, tz: str) -> np.ndarray:
    """The index of the last bar of each local date."""

    def compute() -> np.ndarray:
        days = intervals.local_days(ts, tz)
        return np.flatnonzero(np.append(np.diff(days) != 0, True))

    return memoized("day_ends", ts, tz, compute)


def periods(equity: np.ndarray, bars: Bars) -> Periods:
    """Daily returns (the equity at each date's last bar, in the bars' zone; the first on
    the starting capital), 252 a year, or 365 when any bar is on a Saturday or Sunday;
    for weekly and monthly bars, the bar returns, 52 or 12 a year."""
    if bars.interval == "1w":
        return Periods(bar_returns(equity), intervals.WEEKLY_PERIODS, "week")
    if bars.interval == "1mo":
        return Periods(bar_returns(equity), intervals.MONTHLY_PERIODS, "month")
    weekend = memoized(
        "weekend", bars.ts, bars.tz, lambda: intervals.has_weekend_bars(bars.ts, bars.tz)
    )
    daily = bar_returns(equity[day_ends(bars.ts, bars.tz)])
    return Periods(daily, CALENDAR_DAYS if weekend else TRADING_DAYS, "day")


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Each bar's fall from the highest equity so far (0 or negative)."""
    peak = np.maximum.accumulate(np.maximum(equity, STARTING_CAPITAL))
    return equity / peak - 1


def compute(sim: Simulation, bars: Bars) -> tuple[dict, dict]:
    """(metrics, null_reasons): every FIELDS entry, a float or None."""
    values: dict = {}
    reasons: dict = {}
    equity = sim.equity
    ts = bars.ts
    final = float(equity[-1])
    values["total_return"] = final / STARTING_CAPITAL - 1
    years = (int(ts[-1]) - int(ts[0])) / YEAR_NS
    if sim.stopped_at is not None:
        reasons["trading"] = (
            f"the equity fell to zero or below at bar {sim.stopped_at}: the position was "
            "closed at the next open and nothing traded after"
        )
    if years <= 0:
        reasons["cagr"] = "the bars span no time"
    elif final <= 0:
        reasons["cagr"] = "the final equity is zero or below"
    else:
        try:
            values["cagr"] = (final / STARTING_CAPITAL) ** (1 / years) - 1
        except OverflowError:
            reasons["cagr"] = "too large to represent (a short span annualised)"
    falls = drawdown(equity)
    values["max_drawdown"] = float(falls.min())

    period = periods(equity, bars)
    returns = period.returns
    scale = math.sqrt(period.per_year)
    mean = float(returns.mean())
    spread = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    if spread > 0:
        values["sharpe"] = mean / spread * scale
    else:
        reasons["sharpe"] = (
            f"{ADJECTIVES[period.unit]} returns do not vary (no position, or fewer than "
            f"two {period.unit}s)"
        )
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside > 0:
        values["sortino"] = mean / downside * scale
    else:
        reasons["sortino"] = f"no {period.unit} lost money"

    closed_trades = [t for t in trades(sim) if t.closed and t.entry_price > 0]
    closed = np.array([t.ret for t in closed_trades])
    wins, losses = closed[closed > 0], closed[closed < 0]
    if len(closed):
        values["hit_rate"] = len(wins) / len(closed)
    else:
        reasons["hit_rate"] = "no closed trade"
    if len(wins):
        values["avg_win"] = float(wins.mean())
    else:
        reasons["avg_win"] = "no winning trade"
    if len(losses):
        values["avg_loss"] = float(losses.mean())
    else:
        reasons["avg_loss"] = "no losing trade"

    notional = float(np.sum(sim.qty * sim.price))  # both sides, long or short
    values["turnover"] = notional / float(equity.mean()) if equity.mean() > 0 else None
    if values["turnover"] is None:
        del values["turnover"]
        reasons["turnover"] = "equity fell to zero"
    slippage, fees = float(sim.slippage.sum()), float(sim.fee.sum())
    if slippage + fees > 0:
        values["slippage_share"] = slippage / (slippage + fees)
    else:
        reasons["slippage_share"] = "no trading costs"
    values["fees_paid"] = fees

    values["exposure_time"] = float(np.count_nonzero(sim.position) / len(equity))
    values["buy_and_hold_return"] = float(bars.close[-1] / bars.close[0] - 1)
    annual_figures(period, final, values, reasons)
    drawdown_figures(falls, ts, values, reasons)
    trade_figures(closed_trades, values, reasons)

    metrics = {}
    for name in FIELDS:
        value = values.get(name)
        if value is not None and not math.isfinite(value):
            value, reasons[name] = None, "not finite"
        metrics[name] = None if value is None else float(value)
    return metrics, reasons


def annual_figures(period: Periods, final: float, values: dict, reasons: dict) -> None:
    """annual_return: (final / start)^(P / periods) - 1; annual_volatility: std x sqrt(P);
    calmar: annual_return / |max_drawdown|."""
    count = len(period.returns)
    if final <= 0:
        reasons["annual_return"] = "the final equity is zero or below"
    else:
        try:
            values["annual_return"] = (final / STARTING_CAPITAL) ** (period.per_year / count) - 1
        except OverflowError:
            reasons["annual_return"] = "too large to represent (a short span annualised)"
    if count > 1:
        values["annual_volatility"] = float(period.returns.std(ddof=1)) * math.sqrt(period.per_year)
    else:
        reasons["annual_volatility"] = f"fewer than two {period.unit}s"
    if "annual_return" in values and values["max_drawdown"] < 0:
        values["calmar"] = values["annual_return"] / abs(values["max_drawdown"])
    else:
        reasons.setdefault("calmar", "no drawdown (or no annual return)")


def drawdown_figures(falls: np.ndarray, ts: np.ndarray, values: dict, reasons: dict) -> None:
    """avg_drawdown: the mean of each drawdown's deepest point; max_drawdown_duration_s:
    the longest time from a peak to the bar back at it (or to the last bar)."""
    under = falls < 0
    if not under.any():
        reasons["avg_drawdown"] = reasons["max_drawdown_duration_s"] = "no drawdown"
        return
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # [start, end)
    # Between drawdowns the fall is 0, so each slice's minimum is its drawdown's deepest.
    values["avg_drawdown"] = float(np.minimum.reduceat(falls, starts).mean())
    peaks = np.maximum(starts - 1, 0)  # the bar at the peak before each drawdown
    recovered = np.minimum(ends, len(falls) - 1)  # back at the peak, or the last bar
    values["max_drawdown_duration_s"] = float((ts[recovered] - ts[peaks]).max() // 10**9)


def trade_figures(closed: list[Trade], values: dict, reasons: dict) -> None:
    """Closed trades: their count, best and worst return, expectancy, profit factor, SQN
    and the Kelly fraction."""
    values["trades"] = float(len(closed))
    if not closed:
        for name in ("best_trade", "worst_trade", "expectancy", "profit_factor", "sqn", "kelly"):
            reasons[name] = "no closed trade"
        return
    returns = np.array([t.ret for t in closed])
    pnl = np.array([t.pnl for t in closed])
    values["best_trade"], values["worst_trade"] = float(returns.max()), float(returns.min())
    values["expectancy"] = float(returns.mean())
    won, lost = pnl[pnl > 0], pnl[pnl < 0]
    if len(lost):
        values["profit_factor"] = float(won.sum() / abs(lost.sum()))
    else:
        reasons["profit_factor"] = "no losing trade"
    if len(pnl) > 1 and pnl.std(ddof=1) > 0:
        values["sqn"] = math.sqrt(len(pnl)) * float(pnl.mean() / pnl.std(ddof=1))
    else:
        reasons["sqn"] = "fewer than two trades, or their PnL does not vary"
    if len(won) and len(lost):
        win_rate = len(won) / len(pnl)
        values["kelly"] = win_rate - (1 - win_rate) / float(won.mean() / abs(lost.mean()))
    else:
        reasons["kelly"] = "needs both winning and losing trades"


def running(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Total return and max drawdown so far, at every bar (what playback shows)."""
    return equity / STARTING_CAPITAL - 1, np.minimum.accumulate(drawdown(equity))
