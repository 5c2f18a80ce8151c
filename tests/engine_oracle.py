"""The engine's oracle: every strategy and the simulation as a plain bar-by-bar loop.

Obviously correct and slow; tests/test_engine_simulation.py compares the vectorised engine
with it, and bench/engine.py times it as the reference.
"""

from backtests.engine.bars import Bars
from backtests.engine.simulation import STARTING_CAPITAL, Costs


def oracle_signal(strategy_id: str, params: dict, bars: Bars) -> list[bool]:
    """Each strategy's rule, bar by bar, as its docstring states it."""
    close, high, low = list(bars.close), list(bars.high), list(bars.low)
    n = len(close)

    def mean(t: int, window: int) -> float | None:
        return sum(close[t - window + 1 : t + 1]) / window if t + 1 >= window else None

    out, state = [], False
    for t in range(n):
        if strategy_id == "buy_and_hold":
            state = True
        elif strategy_id == "sma_crossover":
            fast, slow = mean(t, params["fast"]), mean(t, params["slow"])
            state = fast is not None and slow is not None and fast > slow
        elif strategy_id == "momentum":
            lookback = params["lookback"]
            state = t >= lookback and close[t] > close[t - lookback]
        elif strategy_id == "mean_reversion":
            m = mean(t, params["window"])
            if m is not None:
                if close[t] >= m:
                    state = False
                elif close[t] < m * (1 - params["band"]):
                    state = True
        elif strategy_id == "breakout":
            c = params["channel"]
            if t >= c:
                if close[t] < min(low[t - c : t]):
                    state = False
                elif close[t] > max(high[t - c : t]):
                    state = True
        out.append(state)
    return out


def oracle_simulation(bars: Bars, long: list[bool], costs: Costs):
    """Fills and equity, one bar at a time, straight from the rules in docs/engine.md."""
    f = costs.fees_bps / 10_000
    cash, qty, holding = STARTING_CAPITAL, 0.0, False
    fills, equity = [], []
    for t in range(len(bars)):
        if t >= 1 and long[t - 1] != holding:
            slip = costs.k_spread * (bars.high[t - 1] - bars.low[t - 1])
            if long[t - 1]:
                price = bars.open[t] + slip
                qty = cash / (price * (1 + f))
                cash, holding = 0.0, True
                fills.append((t, 1, qty, price, qty * price * f))
            else:
                price = max(bars.open[t] - slip, 0.0)
                fee = qty * price * f
                cash = qty * price - fee
                fills.append((t, -1, qty, price, fee))
                qty, holding = 0.0, False
        equity.append(qty * bars.close[t] if holding else cash)
    return fills, equity


def oracle_exposure(bars: Bars, targets: list[float], costs: Costs):
    """Fills and equity for target exposures, one bar at a time, from docs/engine.md."""
    f = costs.fees_bps / 10_000
    cash, qty, held = STARTING_CAPITAL, 0.0, 0.0
    fills, equity, stopped = [], [], None
    for t in range(len(bars)):
        if t >= 1:
            wanted = 0.0 if stopped is not None else float(targets[t - 1])
            if wanted != held:
                held = wanted
                fill = oracle_order(bars, t, wanted, cash, qty, costs.k_spread, f)
                if fill is not None:
                    side, traded, price, new_qty = fill
                    fee = traded * price * f
                    cash -= (new_qty - qty) * price + fee
                    qty = new_qty
                    fills.append((t, side, traded, price, fee))
        equity.append(cash + qty * bars.close[t])
        if stopped is None and equity[-1] <= 0:
            stopped = t
    return fills, equity


def oracle_order(bars: Bars, t: int, target: float, cash: float, qty: float, k: float, f: float):
    """(side, traded, price, new quantity) of the order at bar t's open, or None."""
    open_ = bars.open[t]
    equity_at_open = cash + qty * open_
    if equity_at_open <= 0 and target != 0:
        return None
    buy = target * equity_at_open > qty * open_
    slip = k * (bars.high[t - 1] - bars.low[t - 1])
    price = open_ + slip if buy else max(open_ - slip, 0.0)
    if price == 0:
        if qty <= 0:
            return None
        new_qty = 0.0
    else:
        # After the order, the position is worth `target` x the equity left after its fee.
        equity, value = cash + qty * price, qty * price
        fee_sign = 1 if buy else -1
        new_qty = target * (equity + fee_sign * f * value) / (1 + fee_sign * target * f) / price
        if (new_qty > qty) != buy:
            return None
    if new_qty == qty:
        return None
    return (1 if buy else -1), abs(new_qty - qty), price, new_qty
