"""The look-ahead check: a strategy's target at bar t must not change when the bars after
t are removed. Run on the whole series and on prefixes cut at many places; every bar
whose target differs between the two read the future.
"""

from dataclasses import dataclass

import numpy as np

from backtests.engine.bars import COLUMNS, Bars
from backtests.engine.simulation import Costs
from backtests.engine.strategies import Strategy

CUTS = 64


@dataclass(frozen=True)
class Peek:
    """A bar whose target changed when later bars were removed."""

    bar: int
    cut: int  # the prefix's length: bars 0..cut-1
    full: float
    prefix: float


def prefix(bars: Bars, length: int) -> Bars:
    """The first `length` bars."""
    columns = {name: getattr(bars, name)[:length] for name in COLUMNS}
    return Bars(**columns, interval=bars.interval, tz=bars.tz)


def cuts(bars: int, count: int = CUTS) -> list[int]:
    """Where to cut: evenly spread, and the shortest prefixes (where warm-ups end)."""
    spread = np.linspace(2, bars - 1, num=min(count, max(bars - 2, 0)), dtype=int)
    return sorted({*spread.tolist(), *range(2, min(bars, 12))})


def peeks(strategy: Strategy, bars: Bars, params: dict, costs: Costs) -> list[Peek]:
    """Every bar whose target depends on later bars, at the cuts tried (first first)."""
    full = strategy.targets(bars, params, costs)
    found: dict[int, Peek] = {}
    for cut in cuts(len(bars)):
        shorter = strategy.targets(prefix(bars, cut), params, costs)
        for bar in np.flatnonzero(shorter != full[:cut]).tolist():
            found.setdefault(bar, Peek(bar, cut, float(full[bar]), float(shorter[bar])))
    return [found[bar] for bar in sorted(found)]
