"""Turn a strategy's `long` array into fills and an equity curve (docs/engine.md).

The rules, the same for every strategy: a signal taken on bar t's close fills at bar
t+1's open (a signal on the last bar never fills); long or flat, fully invested, with
fractional quantities; fees are notional x fees_bps / 10,000 per side; slippage is
k_spread x the signal bar's high-low range per unit, against the trader (a sell price
never goes below 0); equity is marked at every bar's close.

Vectorised: a round trip multiplies the cash by sell(1 - f) / (buy(1 + f)), so the cash
before each entry is a cumulative product and every bar's equity is gathered from it.
"""

from dataclasses import dataclass

import numpy as np

from backtests.engine.bars import Bars

STARTING_CAPITAL = 100_000.0
# Cost bounds: a fee of 100% or more per side would turn a buy's quantity negative; a
# slippage of more than ten bar ranges per side is no estimate of anything.
MAX_FEES_BPS = 10_000  # exclusive
MAX_K_SPREAD = 10.0  # inclusive


@dataclass(frozen=True)
class Costs:
    """Trading costs: slippage in units of the spread estimate, fees in basis points."""

    k_spread: float
    fees_bps: float

    def problems(self) -> dict[str, str]:
        """What is out of bounds, by field (empty when the costs are usable)."""
        found = {}
        if not 0 <= self.k_spread <= MAX_K_SPREAD:
            found["k_spread"] = f"must be from 0 to {MAX_K_SPREAD:g}"
        if not 0 <= self.fees_bps < MAX_FEES_BPS:
            found["fees_bps"] = f"must be at least 0 and less than {MAX_FEES_BPS:,}"
        return found


@dataclass(frozen=True)
class Simulation:
    """Per bar: equity and position at the close. Per fill: where, which side, how much."""

    equity: np.ndarray
    position: np.ndarray
    fill_bar: np.ndarray  # bar index of each fill (its signal was on the bar before)
    side: np.ndarray  # +1 buy, -1 sell
    qty: np.ndarray
    price: np.ndarray
    slippage: np.ndarray  # money: qty x |price - open|
    fee: np.ndarray  # money


def spread_estimate(bars: Bars) -> np.ndarray:
    """Each bar's high-low range: the spread estimate for an order sent at its close."""
    return bars.high - bars.low


def simulate(bars: Bars, long: np.ndarray, costs: Costs) -> Simulation:
    """Fills and equity for the wanted positions `long` (one bool per bar)."""
    n = len(bars)
    held = np.zeros(n, dtype=np.int8)
    held[1:] = long[:-1]  # the position during bar t, from its open
    change = np.diff(held, prepend=np.int8(0))
    fill_bar = np.flatnonzero(change)
    side = change[fill_bar].astype(np.int8)
    fee_rate = costs.fees_bps / 10_000
    slip = costs.k_spread * spread_estimate(bars)[fill_bar - 1]
    opens = bars.open[fill_bar]
    price = np.where(side > 0, opens + slip, np.maximum(opens - slip, 0.0))

    buys, sells = fill_bar[side > 0], fill_bar[side < 0]
    buy_price, sell_price = price[side > 0], price[side < 0]
    closed = len(sells)
    growth = sell_price * (1 - fee_rate) / (buy_price[:closed] * (1 + fee_rate))
    cash_before = STARTING_CAPITAL * np.concatenate(([1.0], np.cumprod(growth)))
    entry_qty = cash_before[: len(buys)] / (buy_price * (1 + fee_rate))

    bar = np.arange(n)
    trip = np.searchsorted(buys, bar, side="right") - 1  # last entry at or before bar
    exit_bar = np.append(sells, n)  # an open trip exits "after the end"
    holding = (trip >= 0) & (bar < exit_bar[np.maximum(trip, 0)])
    qty_held = np.where(trip >= 0, entry_qty[np.maximum(trip, 0)] if len(buys) else 0.0, 0.0)
    position = np.where(holding, qty_held, 0.0)
    cash = cash_before[np.searchsorted(sells, bar, side="right")]
    equity = np.where(holding, position * bars.close, cash)

    qty = entry_qty[np.cumsum(side > 0) - 1] if len(fill_bar) else np.zeros(0)
    return Simulation(
        equity=equity,
        position=position,
        fill_bar=fill_bar,
        side=side,
        qty=qty,
        price=price,
        slippage=qty * np.abs(price - opens),
        fee=qty * price * fee_rate,
    )
