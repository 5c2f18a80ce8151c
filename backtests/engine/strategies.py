"""The strategy registry: each strategy's rule, parameter schema, and its signal.

A strategy maps bars to a boolean array `long`: `long[t]` is the position wanted from the
close of bar t (True: fully invested, False: flat). The simulation fills the change at
bar t+1's open (docs/engine.md). Signals are vectorised: no Python loop over bars.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from backtests.engine.bars import Bars
from backtests.engine.indicators import previous_extreme, rolling_mean


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default and inclusive bounds."""

    kind: type
    default: int | float
    minimum: int | float
    maximum: int | float
    doc: str

    def describe(self) -> dict:
        """The parameter as the API lists it."""
        return {
            "type": "integer" if self.kind is int else "number",
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.doc,
        }


@dataclass(frozen=True)
class Strategy:
    """A registered strategy."""

    strategy_id: str
    rule: str
    params: dict[str, Param]
    signal: Callable[..., np.ndarray]
    # Rules across parameters: (check, message) pairs.
    constraints: tuple[tuple[Callable[[dict], bool], str], ...] = field(default=())

    def describe(self) -> dict:
        """The strategy as GET /strategies lists it."""
        return {
            "strategy_id": self.strategy_id,
            "rule": self.rule,
            "params": {name: param.describe() for name, param in self.params.items()},
            "constraints": [message for _, message in self.constraints],
        }


class ParamsError(ValueError):
    """Parameters that do not fit a strategy's schema: {field: rule}."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


class UnknownStrategy(KeyError):
    """A strategy id that is not registered."""


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


def sma_crossover(bars: Bars, fast: int, slow: int) -> np.ndarray:
    """Long while the fast SMA of closes is above the slow SMA."""
    return rolling_mean(bars.close, fast) > rolling_mean(bars.close, slow)


def buy_and_hold(bars: Bars) -> np.ndarray:
    """Long from the first bar's close to the end."""
    return np.ones(len(bars), dtype=bool)


def mean_reversion(bars: Bars, window: int, band: float) -> np.ndarray:
    """Enter when the close is `band` below its SMA; exit when it is back at the SMA."""
    mean = rolling_mean(bars.close, window)
    return hold_between(bars.close < mean * (1 - band), bars.close >= mean)


def momentum(bars: Bars, lookback: int) -> np.ndarray:
    """Long while the close is above the close `lookback` bars earlier."""
    long = np.zeros(len(bars), dtype=bool)
    long[lookback:] = bars.close[lookback:] > bars.close[:-lookback]
    return long


def breakout(bars: Bars, channel: int) -> np.ndarray:
    """Enter on a close above the previous `channel` bars' highest high; exit on a close
    below their lowest low (a Donchian channel)."""
    upper = previous_extreme(bars.high, channel, np.max)
    lower = previous_extreme(bars.low, channel, np.min)
    return hold_between(bars.close > upper, bars.close < lower)


REGISTRY: dict[str, Strategy] = {
    s.strategy_id: s
    for s in [
        Strategy(
            "sma_crossover",
            "Long while SMA(fast) of closes > SMA(slow); flat otherwise and until `slow` "
            "bars exist.",
            {
                "fast": Param(int, 20, 1, 10_000, "bars in the fast moving average"),
                "slow": Param(int, 50, 2, 20_000, "bars in the slow moving average"),
            },
            sma_crossover,
            ((lambda p: p["fast"] < p["slow"], "fast must be less than slow"),),
        ),
        Strategy(
            "buy_and_hold",
            "Long from the first bar's close (filled at the second bar's open) to the end: "
            "the benchmark.",
            {},
            buy_and_hold,
        ),
        Strategy(
            "mean_reversion",
            "Enter long when the close is more than `band` (a fraction) below SMA(window); "
            "exit when the close is back at or above it.",
            {
                "window": Param(int, 30, 2, 10_000, "bars in the moving average"),
                "band": Param(float, 0.002, 0.0, 0.5, "distance below the average, a fraction"),
            },
            mean_reversion,
        ),
        Strategy(
            "momentum",
            "Long while the close is above the close `lookback` bars earlier.",
            {"lookback": Param(int, 60, 1, 20_000, "bars to look back")},
            momentum,
        ),
        Strategy(
            "breakout",
            "Enter long on a close above the highest high of the previous `channel` bars; "
            "exit on a close below their lowest low.",
            {"channel": Param(int, 55, 1, 10_000, "bars in the channel")},
            breakout,
        ),
    ]
}


def get(strategy_id: str) -> Strategy:
    """A registered strategy; UnknownStrategy names the known ones."""
    try:
        return REGISTRY[strategy_id]
    except KeyError:
        raise UnknownStrategy(strategy_id) from None


def resolve_params(strategy: Strategy, params: dict) -> dict:
    """Params with defaults filled in, checked against the schema; ParamsError if not."""
    problems: dict[str, str] = {}
    if not isinstance(params, dict):
        raise ParamsError({"params": "must be an object"})
    for name in params:
        if name not in strategy.params:
            known = ", ".join(strategy.params) or "none"
            problems[f"params.{name}"] = f"unknown parameter (known: {known})"
    resolved = {}
    for name, param in strategy.params.items():
        value = params.get(name, param.default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems[f"params.{name}"] = (
                f"must be a{'n integer' if param.kind is int else ' number'}"
            )
            continue
        if param.kind is int:
            if value != int(value):
                problems[f"params.{name}"] = "must be an integer"
                continue
            value = int(value)
        else:
            value = float(value)
        if not param.minimum <= value <= param.maximum:
            problems[f"params.{name}"] = f"must be between {param.minimum} and {param.maximum}"
            continue
        resolved[name] = value
    if not problems:
        for check, message in strategy.constraints:
            if not check(resolved):
                problems["params"] = message
    if problems:
        raise ParamsError(problems)
    return resolved


def signal(strategy_id: str, params: dict, bars: Bars) -> np.ndarray:
    """The `long` array of a strategy over bars (params resolved and checked first)."""
    strategy = get(strategy_id)
    return strategy.signal(bars, **resolve_params(strategy, params))
