"""Trades from fills: entries, adds, trims, reversals and exits; their PnL adds up to the
equity's change."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtests.engine.simulation import STARTING_CAPITAL, Costs, simulate
from backtests.engine.trades import trades
from tests.test_engine_simulation import bar_series, make_bars

FLAT = make_bars([10] * 8, [10] * 8, [10] * 8, [10] * 8)


def test_a_long_that_adds_trims_and_reverses_into_a_short() -> None:
    bars = make_bars(
        [10, 10, 12, 12, 15, 15, 9, 9],
        [10, 12, 12, 15, 15, 15, 9, 9],
        [10, 10, 12, 12, 15, 9, 9, 9],
        [10, 12, 12, 15, 15, 9, 9, 9],
    )
    targets = np.array([0.5, 1.0, 1.0, 0.25, -0.5, -0.5, 0.0, 0.0])
    sim = simulate(bars, targets, Costs(0, 0))
    found = trades(sim)
    assert [(t.side, t.entry_bar, t.exit_bar) for t in found] == [(1, 1, 5), (-1, 5, 7)]
    long, short = found
    assert long.entry_price == 10 and long.exit_price == 15
    # 5,000 shares at 10, then to 100% at 12, trimmed to 25% at 15, closed at 15.
    assert long.entry_qty == pytest.approx(5_000)
    assert long.pnl + short.pnl == pytest.approx(sim.equity[-1] - STARTING_CAPITAL)
    assert short.pnl > 0 and short.ret == pytest.approx(short.pnl / (short.entry_qty * 15))


@settings(max_examples=200, deadline=None)
@given(
    bars=bar_series(),
    data=st.data(),
    costs=st.builds(Costs, st.sampled_from([0.0, 0.5]), st.sampled_from([0.0, 10.0])),
)
def test_trade_pnl_adds_up_to_the_equitys_change(bars, data, costs) -> None:
    targets = data.draw(
        st.lists(
            st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]), min_size=len(bars), max_size=len(bars)
        )
    )
    sim = simulate(bars, np.array(targets), costs)
    found = trades(sim, last_close=float(bars.close[-1]))
    assert sum(t.pnl for t in found) == pytest.approx(
        sim.equity[-1] - STARTING_CAPITAL, rel=1e-9, abs=1e-6
    )
    assert sum(t.fees for t in found) == pytest.approx(sim.fee.sum(), rel=1e-9, abs=1e-9)
    for before, after in itertools.pairwise(found):
        assert before.closed and before.exit_bar <= after.entry_bar
