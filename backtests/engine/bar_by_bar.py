"""Bar-by-bar strategies: rules that depend on the path (stops, take-profits, time exits).

A `BarStrategy` sees one bar at a time, after its close, with the account as it stands:

    class trailing_stop(BarStrategy):
        \"\"\"Long on a new 20-bar high; out 5% below the highest close since entry.\"\"\"

        def start(self, stop):          # once, with the run's parameters
            self.stop, self.peak = stop, 0.0

        def next(self, i):              # every bar, at its close; None keeps the target
            ...
            return 1.0

During `next(i)` the strategy reads `self.open[i]`, `self.high[i]`, `self.low[i]`,
`self.close[i]`, `self.volume[i]`, `self.ts[i]` (lists of floats and int nanoseconds,
bars 0..i; it must not read past i), `self.bars` (the Bars), and the account at bar i's
close: `self.target` (the target in force), `self.qty` (the signed quantity held),
`self.equity` and `self.entry_price` (the fill price of the position's entry, None when
flat). What it returns is the target from bar i's close: it fills at bar i+1's open, by
the same rules as every strategy's (simulation.order).
"""

import numpy as np

from backtests.engine.bars import Bars
from backtests.engine.simulation import STARTING_CAPITAL, Costs, order, spread_estimate


class BarStrategy:
    """Subclass it: `start(**params)` once, then `next(i)` at every bar's close."""

    def start(self, **params) -> None:
        """Set up with the run's parameters (by default: keep them as attributes)."""
        for name, value in params.items():
            setattr(self, name, value)

    def next(self, i: int) -> float | None:
        """The target from bar i's close, or None to keep the one in force."""
        raise NotImplementedError


def run_bar_by_bar(cls: type[BarStrategy], bars: Bars, params: dict, costs: Costs) -> np.ndarray:
    """Each bar's target from the strategy, the account kept as the simulation keeps it."""
    n = len(bars)
    rule = cls()
    rule.bars = bars
    rule.ts = bars.ts.tolist()
    opens = bars.open.tolist()
    rule.open, rule.high, rule.low = opens, bars.high.tolist(), bars.low.tolist()
    closes = bars.close.tolist()
    rule.close, rule.volume = closes, bars.volume.tolist()
    slips = (costs.k_spread * spread_estimate(bars)).tolist()
    fee_rate = costs.fees_bps / 10_000
    rule.target, rule.qty, rule.entry_price = 0.0, 0.0, None
    rule.start(**params)
    targets = [0.0] * n
    cash, qty, held, wanted = STARTING_CAPITAL, 0.0, 0.0, 0.0
    for i in range(n):
        if wanted != held and i > 0:  # the target decided at the last close fills now
            held = wanted
            filled = order(cash, qty, held, opens[i], slips[i - 1], fee_rate)
            if filled is not None:
                _, new_qty, price, _, cash = filled
                if new_qty == 0.0:
                    rule.entry_price = None
                elif qty == 0.0 or (qty > 0) != (new_qty > 0):
                    rule.entry_price = price
                qty = new_qty
        rule.target, rule.qty, rule.equity = held, qty, cash + qty * closes[i]
        decided = rule.next(i)
        if decided is not None:
            wanted = float(decided)
        targets[i] = wanted
    return np.array(targets)
