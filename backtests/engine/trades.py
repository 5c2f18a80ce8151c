"""Trades from fills: a trade runs from entering a position to leaving it or reversing.

Orders that add to or trim a position belong to its trade; an order that reverses a
position closes one trade and opens the next, its quantity, fee and slippage split
between them. A trade's PnL is its cash flows (both sides' fees and slippage included,
since they are in the fill prices and fees); its return is PnL / |entry quantity x entry
price|. A loop over the fills, not the bars.
"""

from dataclasses import dataclass, field

import numpy as np

from backtests.engine.simulation import Simulation

# Quantities this close (relatively) are one: a reversal's two parts are a subtraction
# apart, so the later close of the new position may differ from it in the last bits.
SAME = 1e-9


@dataclass
class Trade:
    """One trade: long (+1) or short (-1), from its entry fill to its exit fill."""

    side: int
    entry_bar: int
    entry_qty: float
    entry_price: float
    exit_bar: int | None = None
    exit_price: float | None = None
    qty: float = 0.0  # the largest quantity held during the trade
    pnl: float = 0.0
    fees: float = 0.0
    held: float = field(default=0.0, repr=False)  # signed quantity held now

    @property
    def closed(self) -> bool:
        return self.exit_bar is not None

    @property
    def ret(self) -> float:
        """PnL over the entry's notional."""
        return self.pnl / abs(self.entry_qty * self.entry_price)


def trades(sim: Simulation, last_close: float | None = None) -> list[Trade]:
    """Every trade of a simulation, in order; an open one's PnL is marked at `last_close`."""
    return trades_of(sim.fill_bar, sim.side, sim.qty, sim.price, sim.fee, last_close)


def trades_of(
    at: np.ndarray,
    sides: np.ndarray,
    qtys: np.ndarray,
    prices: np.ndarray,
    fees: np.ndarray,
    last_close: float | None = None,
) -> list[Trade]:
    """Trades from fill columns (`at`: each fill's bar index, or its time: what the
    trades' entry and exit carry)."""
    found: list[Trade] = []
    open_trade: Trade | None = None
    columns = (at, sides, qtys, prices, fees)
    for bar, side, qty, price, fee in zip(*(c.tolist() for c in columns), strict=True):
        delta = side * qty
        if open_trade is not None and open_trade.held * delta < 0:
            closing = min(qty, abs(open_trade.held))
            if qty - closing <= SAME * qty:
                closing = qty  # a close that float rounding would leave a crumb of
            share = closing / qty
            book(open_trade, side * closing, price, fee * share)
            if abs(open_trade.held) <= SAME * open_trade.qty:
                open_trade.exit_bar, open_trade.exit_price = bar, price
                open_trade.held = 0.0
                open_trade = None
            delta, fee, qty = side * (qty - closing), fee * (1 - share), qty - closing
        if qty <= 0:
            continue
        if open_trade is None:
            open_trade = Trade(side, bar, qty, price)
            found.append(open_trade)
        book(open_trade, delta, price, fee)
    if open_trade is not None and last_close is not None:
        open_trade.pnl += open_trade.held * last_close  # marked, not realised
    return found


def book(trade: Trade, delta: float, price: float, fee: float) -> None:
    """A fill's part that belongs to a trade: its cash flow, fee and quantity."""
    trade.pnl -= delta * price + fee
    trade.fees += fee
    trade.held += delta
    trade.qty = max(trade.qty, abs(trade.held))
