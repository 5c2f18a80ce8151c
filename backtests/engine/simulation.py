"""Turn a strategy's target exposures into fills and an equity curve (docs/engine.md).

The rules, the same for every strategy: a target is the fraction of equity to hold,
positive long, negative short, in [-1, 1] (a boolean array means 1 or 0). The target
decided on bar t's close fills at bar t+1's open (one on the last bar never fills); there
is an order only where the target changes. The order takes the position to the target
value, counted on the equity left after the order's own fee: a buy from flat to 1 spends
all the cash, fee included, as a long/flat account would. Fees are notional x
fees_bps / 10,000; slippage is k_spread x the signal bar's high-low range per unit,
against the trader (a sell price never goes below 0). Equity is cash + quantity x close
at every bar (a short's quantity is negative). At the first close where equity is zero
or below, the position is closed at the next open and the run trades no more.

The state (cash, quantity) changes only at orders, so the loop runs over the orders, not
the bars; every bar's equity is then gathered from the state in force at it.
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
    """Per bar: equity and position (signed quantity) at the close. Per fill: where, which
    side, how much (unsigned), at what price and cost."""

    equity: np.ndarray
    position: np.ndarray
    fill_bar: np.ndarray  # bar index of each fill (its signal was on the bar before)
    side: np.ndarray  # +1 buy, -1 sell
    qty: np.ndarray
    price: np.ndarray
    slippage: np.ndarray  # money: qty x |price - open|
    fee: np.ndarray  # money
    stopped_at: int | None = None  # the bar whose close left no equity, if one did


@dataclass(frozen=True)
class Fills:
    """The orders' fills, and the state (cash, quantity) each one leaves."""

    bar: np.ndarray
    side: np.ndarray
    qty: np.ndarray
    price: np.ndarray
    slippage: np.ndarray
    fee: np.ndarray
    cash: np.ndarray
    held: np.ndarray  # the signed quantity held after the fill


def spread_estimate(bars: Bars) -> np.ndarray:
    """Each bar's high-low range: the spread estimate for an order sent at its close."""
    return bars.high - bars.low


def held_targets(target: np.ndarray) -> np.ndarray:
    """The target in force from each bar's open: the one decided at the bar before."""
    held = np.zeros(len(target))
    held[1:] = np.asarray(target, dtype=np.float64)[:-1]
    return held


def value_after(target: float, equity: float, held: float, fee_rate: float, buy: bool) -> float:
    """The position's value after an order at one price: `target` x the equity left after
    the order's fee, solved for (`equity` and `held`, the position's value, before it)."""
    if buy:
        return target * (equity + fee_rate * held) / (1 + target * fee_rate)
    return target * (equity - fee_rate * held) / (1 - target * fee_rate)


def order(
    cash: float, qty: float, target: float, open_: float, slip: float, fee_rate: float
) -> tuple[int, float, float, float, float] | None:
    """The order that takes the position to `target` at an open: (side, quantity after,
    price, fee, cash after), or None when there is none (docs/engine.md, the order's size)."""
    if cash + qty * open_ <= 0 and target != 0.0:
        return None  # nothing left to trade with (a close still goes through)
    buy = target * (cash + qty * open_) > qty * open_
    price = open_ + slip if buy else max(open_ - slip, 0.0)
    if price == 0.0:
        if qty <= 0:
            return None  # no one sells short at a price of 0
        new_qty = 0.0  # a sell at 0 closes the long, for nothing
    else:
        new_qty = value_after(target, cash + qty * price, qty * price, fee_rate, buy) / price
        if (new_qty > qty) != buy or new_qty == qty:
            return None  # the costs would turn the order around, or nothing to trade
    fee = abs(new_qty - qty) * price * fee_rate
    return (1 if buy else -1), new_qty, price, fee, cash - ((new_qty - qty) * price + fee)


def run_orders(bars: Bars, held: np.ndarray, costs: Costs) -> Fills:
    """Fill every change of the held target, in order (a loop over the orders)."""
    fee_rate = costs.fees_bps / 10_000
    changes = np.flatnonzero(np.diff(held, prepend=0.0))
    opens = bars.open[changes]
    slips = costs.k_spread * spread_estimate(bars)[changes - 1] if len(changes) else opens
    rows = []
    cash, qty = STARTING_CAPITAL, 0.0
    for bar, target, open_, slip in zip(
        changes.tolist(), held[changes].tolist(), opens.tolist(), slips.tolist(), strict=True
    ):
        filled = order(cash, qty, target, open_, slip, fee_rate)
        if filled is None:
            continue
        side, new_qty, price, fee, cash = filled
        traded = abs(new_qty - qty)
        qty = new_qty
        rows.append((bar, side, traded, price, traded * abs(price - open_), fee, cash, qty))
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    return Fills(*(np.array(column, dtype=np.float64) for column in columns))


def mark(bars: Bars, fills: Fills) -> tuple[np.ndarray, np.ndarray]:
    """Every bar's equity and position at its close, from the state each fill left."""
    state = np.searchsorted(fills.bar, np.arange(len(bars)), side="right")  # 0: no fill yet
    cash = np.concatenate(([STARTING_CAPITAL], fills.cash))[state]
    position = np.concatenate(([0.0], fills.held))[state]
    return cash + position * bars.close, position


def simulate(bars: Bars, target: np.ndarray, costs: Costs) -> Simulation:
    """Fills and equity for the target exposures (one per bar, in [-1, 1])."""
    held = held_targets(target)
    fills = run_orders(bars, held, costs)
    equity, position = mark(bars, fills)
    broke = np.flatnonzero(equity <= 0)
    stopped_at = int(broke[0]) if len(broke) else None
    if stopped_at is not None:
        held[stopped_at + 1 :] = 0.0  # close at the next open; no order after
        fills = run_orders(bars, held, costs)
        equity, position = mark(bars, fills)
    return Simulation(
        equity=equity,
        position=position,
        fill_bar=fills.bar.astype(np.int64),
        side=fills.side.astype(np.int8),
        qty=fills.qty,
        price=fills.price,
        slippage=fills.slippage,
        fee=fills.fee,
        stopped_at=stopped_at,
    )
