"""The built-in strategies, written against the public API like any user's module.

Vectorised ones return one target per bar (booleans: long or flat); `trailing_stop`
shows the bar-by-bar form. docs/strategies.md describes the API; docs/engine.md the rules.
"""

import numpy as np

from backtests.engine.api import Bars, BarStrategy, Param, strategy
from backtests.engine.indicators import previous_extreme, rolling_mean

WINDOWS = {
    "fast": Param(int, 20, 1, 10_000, "bars in the fast moving average"),
    "slow": Param(int, 50, 2, 20_000, "bars in the slow moving average"),
}
FAST_BELOW_SLOW = [(lambda p: p["fast"] < p["slow"], "fast must be less than slow")]


def hold_between(enter: np.ndarray, exit_: np.ndarray) -> np.ndarray:
    """Long from each bar where `enter` holds until the next bar where `exit_` holds.

    An exit wins over an entry on the same bar. Vectorised: the state at each bar is the
    last event seen (an entry or an exit), carried forward.
    """
    event = np.where(exit_, 0, np.where(enter, 1, -1))
    positions = np.where(event >= 0, np.arange(len(event)), -1)
    last = np.maximum.accumulate(positions)
    state = np.where(last >= 0, event[np.maximum(last, 0)], 0)
    return state == 1


@strategy(params=WINDOWS, constraints=FAST_BELOW_SLOW)
def sma_crossover(bars: Bars, fast: int, slow: int) -> np.ndarray:
    """Long while SMA(fast) of closes > SMA(slow); flat otherwise and until `slow` bars exist."""
    return rolling_mean(bars.close, fast) > rolling_mean(bars.close, slow)


@strategy(params=WINDOWS, constraints=FAST_BELOW_SLOW)
def sma_long_short(bars: Bars, fast: int, slow: int) -> np.ndarray:
    """Long while SMA(fast) > SMA(slow), short while below; flat when equal or too early."""
    return np.nan_to_num(np.sign(rolling_mean(bars.close, fast) - rolling_mean(bars.close, slow)))


@strategy()
def buy_and_hold(bars: Bars) -> np.ndarray:
    """Long from the first bar's close (filled at the second bar's open) to the end."""
    return np.ones(len(bars), dtype=bool)


@strategy(
    params={
        "window": Param(int, 30, 2, 10_000, "bars in the moving average"),
        "band": Param(float, 0.002, 0.0, 0.5, "distance below the average, a fraction"),
    }
)
def mean_reversion(bars: Bars, window: int, band: float) -> np.ndarray:
    """Enter long when the close is `band` below SMA(window); exit when back at or above it."""
    mean = rolling_mean(bars.close, window)
    return hold_between(bars.close < mean * (1 - band), bars.close >= mean)


@strategy(params={"lookback": Param(int, 60, 1, 20_000, "bars to look back")})
def momentum(bars: Bars, lookback: int) -> np.ndarray:
    """Long while the close is above the close `lookback` bars earlier."""
    long = np.zeros(len(bars), dtype=bool)
    long[lookback:] = bars.close[lookback:] > bars.close[:-lookback]
    return long


@strategy(params={"channel": Param(int, 55, 1, 10_000, "bars in the channel")})
def breakout(bars: Bars, channel: int) -> np.ndarray:
    """Long on a close above the previous `channel` highs; out on a close below their lows."""
    upper = previous_extreme(bars.high, channel, np.max)
    lower = previous_extreme(bars.low, channel, np.min)
    return hold_between(bars.close > upper, bars.close < lower)


@strategy(
    params={
        "channel": Param(int, 20, 1, 10_000, "bars whose highest close an entry must pass"),
        "stop": Param(float, 0.05, 0.001, 0.5, "how far below its peak a close exits"),
    }
)
class trailing_stop(BarStrategy):
    """Long on a close above the previous `channel` closes; out `stop` below the peak close."""

    def start(self, channel: int, stop: float) -> None:
        self.channel, self.stop, self.peak = channel, stop, 0.0

    def next(self, i: int) -> float | None:
        close = self.close[i]
        if self.target > 0:
            self.peak = max(self.peak, close)
            return 0.0 if close < self.peak * (1 - self.stop) else None
        if i >= self.channel and close > max(self.close[i - self.channel : i]):
            self.peak = close
            return 1.0
        return None
