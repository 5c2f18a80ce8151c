"""The vectorised engine against a plain bar-by-bar loop (the oracle), and hand-computed costs.

Prices in the generated series are multiples of 1/64, so that sums of them are exact in
floating point: the oracle's moving averages then equal the engine's bit for bit, and a
crossover is never decided by rounding.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from backtests.engine import metrics, strategies
from backtests.engine.bars import Bars
from backtests.engine.intervals import MINUTE_NS
from backtests.engine.simulation import Costs, simulate
from tests.engine_oracle import oracle_exposure, oracle_signal, oracle_simulation

T0 = 1_672_756_200 * 10**9  # 2023-01-03T14:30:00Z


def make_bars(opens, highs, lows, closes) -> Bars:
    n = len(opens)
    return Bars(
        ts=T0 + np.arange(n, dtype=np.int64) * MINUTE_NS,
        open=np.array(opens, dtype=float),
        high=np.array(highs, dtype=float),
        low=np.array(lows, dtype=float),
        close=np.array(closes, dtype=float),
        volume=np.ones(n),
    )


@st.composite
def bar_series(draw, min_size: int = 2, max_size: int = 120) -> Bars:
    n = draw(st.integers(min_size, max_size))
    ticks = st.integers(64, 64 * 60)  # 1.0 to 60.0 in steps of 1/64
    opens = np.array(draw(st.lists(ticks, min_size=n, max_size=n))) / 64
    closes = np.array(draw(st.lists(ticks, min_size=n, max_size=n))) / 64
    up = np.array(draw(st.lists(st.integers(0, 64), min_size=n, max_size=n))) / 64
    down = np.array(draw(st.lists(st.integers(0, 63), min_size=n, max_size=n))) / 64
    highs = np.maximum(opens, closes) + up
    lows = np.maximum(np.minimum(opens, closes) - down, 1 / 64)
    return make_bars(opens, highs, lows, closes)


costs_strategy = st.builds(
    Costs,
    k_spread=st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0]),
    fees_bps=st.sampled_from([0.0, 1.0, 5.0, 25.0]),
)


PARAMS = st.one_of(
    st.tuples(st.just("buy_and_hold"), st.just({})),
    st.tuples(
        st.just("sma_crossover"),
        st.tuples(st.integers(1, 10), st.integers(1, 20)).map(
            lambda p: {"fast": min(p), "slow": max(p) + 1}
        ),
    ),
    st.tuples(
        st.just("mean_reversion"),
        st.fixed_dictionaries(
            {"window": st.integers(2, 20), "band": st.sampled_from([0.0, 0.001, 0.01, 0.05])}
        ),
    ),
    st.tuples(st.just("momentum"), st.fixed_dictionaries({"lookback": st.integers(1, 20)})),
    st.tuples(st.just("breakout"), st.fixed_dictionaries({"channel": st.integers(1, 20)})),
)


def assert_same_as_oracle(sim, fills, equity) -> None:
    """The engine's fills and equity are the oracle's (1e-9 relative)."""
    assert sim.fill_bar.tolist() == [f[0] for f in fills]
    assert sim.side.tolist() == [f[1] for f in fills]
    np.testing.assert_allclose(sim.qty, [f[2] for f in fills], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sim.price, [f[3] for f in fills], rtol=1e-12)
    np.testing.assert_allclose(sim.fee, [f[4] for f in fills], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sim.equity, equity, rtol=1e-9, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(bars=bar_series(), choice=PARAMS, costs=costs_strategy)
def test_engine_matches_the_bar_by_bar_oracle(bars: Bars, choice, costs: Costs) -> None:
    strategy_id, params = choice
    long = strategies.signal(strategy_id, params, bars)
    assert long.tolist() == oracle_signal(strategy_id, params, bars)
    sim = simulate(bars, long, costs)
    assert_same_as_oracle(sim, *oracle_exposure(bars, long.tolist(), costs))


TARGETS = st.sampled_from([-1.0, -0.5, -0.25, 0.0, 0.3, 0.5, 1.0])


@settings(max_examples=300, deadline=None)
@given(bars=bar_series(), data=st.data(), costs=costs_strategy)
def test_target_exposures_match_the_oracle(bars: Bars, data, costs: Costs) -> None:
    """Long, short and sized positions on random bars and random targets."""
    targets = data.draw(st.lists(TARGETS, min_size=len(bars), max_size=len(bars)))
    sim = simulate(bars, np.array(targets), costs)
    fills, equity = oracle_exposure(bars, targets, costs)
    assert_same_as_oracle(sim, fills, equity)


@settings(max_examples=200, deadline=None)
@given(bars=bar_series(), choice=PARAMS, costs=costs_strategy)
def test_long_flat_targets_are_the_long_only_engine(bars: Bars, choice, costs: Costs) -> None:
    """Targets of 0 and 1 give the long/flat engine's fills and equity, costs included
    (until a sell at a price of 0 leaves nothing, where that engine kept trading dust)."""
    strategy_id, params = choice
    long = oracle_signal(strategy_id, params, bars)
    old_fills, old_equity = oracle_simulation(bars, long, costs)
    assume(min(old_equity) > 0)
    sim = simulate(bars, np.array(long), costs)
    assert_same_as_oracle(sim, old_fills, old_equity)


@settings(max_examples=100, deadline=None)
@given(bars=bar_series(), choice=PARAMS, costs=costs_strategy)
def test_metrics_are_finite_or_null_with_a_reason(bars: Bars, choice, costs: Costs) -> None:
    strategy_id, params = choice
    sim = simulate(bars, strategies.signal(strategy_id, params, bars), costs)
    values, reasons = metrics.compute(sim, bars)
    assert set(values) == set(metrics.FIELDS)
    for name, value in values.items():
        if value is None:
            assert reasons[name]
        else:
            assert math.isfinite(value)


# A hand-computed case: three bars, buy on bar 0's close, sell on bar 1's close.
HAND = make_bars([10, 10, 12], [11, 11, 13], [9, 9.5, 11], [10, 11, 12.5])


def test_a_buy_fills_at_the_next_open_plus_slippage_with_fees() -> None:
    sim = simulate(HAND, np.array([True, True, True]), Costs(k_spread=0.5, fees_bps=10))
    # Signal bar 0 (range 11 - 9 = 2): buy at bar 1's open 10 + 0.5 x 2 = 11.
    assert sim.fill_bar.tolist() == [1] and sim.side.tolist() == [1]
    assert sim.price[0] == 11.0
    qty = 100_000 / (11.0 * 1.001)
    assert sim.qty[0] == pytest.approx(qty, rel=1e-12)
    assert sim.fee[0] == pytest.approx(qty * 11.0 * 0.001, rel=1e-12)
    assert sim.slippage[0] == pytest.approx(qty * 1.0, rel=1e-12)
    assert sim.equity.tolist() == pytest.approx([100_000, qty * 11, qty * 12.5], rel=1e-12)
    assert sim.position.tolist() == pytest.approx([0, qty, qty], rel=1e-12)


def test_a_sell_fills_at_the_next_open_minus_slippage_less_fees() -> None:
    sim = simulate(HAND, np.array([True, False, False]), Costs(k_spread=0.5, fees_bps=10))
    qty = 100_000 / (11.0 * 1.001)
    # Signal bar 1 (range 11 - 9.5 = 1.5): sell at bar 2's open 12 - 0.75 = 11.25.
    assert sim.fill_bar.tolist() == [1, 2] and sim.side.tolist() == [1, -1]
    assert sim.price[1] == 11.25
    assert sim.fee[1] == pytest.approx(qty * 11.25 * 0.001, rel=1e-12)
    assert sim.equity[2] == pytest.approx(qty * 11.25 * 0.999, rel=1e-12)
    assert sim.position[2] == 0


def test_no_costs_means_fills_at_the_open() -> None:
    sim = simulate(HAND, np.array([True, True, True]), Costs(0, 0))
    assert sim.price.tolist() == [10.0]
    assert sim.fee.tolist() == [0.0] and sim.slippage.tolist() == [0.0]
    assert sim.equity[-1] == pytest.approx(100_000 / 10 * 12.5)


def test_a_signal_on_the_last_bar_never_fills() -> None:
    sim = simulate(HAND, np.array([False, False, True]), Costs(0.5, 10))
    assert len(sim.fill_bar) == 0
    assert sim.equity.tolist() == [100_000] * 3


def test_a_sell_price_never_goes_below_zero() -> None:
    bars = make_bars([10, 10, 1], [11, 30, 2], [9, 1, 1], [10, 20, 1.5])
    sim = simulate(bars, np.array([True, False, False]), Costs(k_spread=1, fees_bps=0))
    assert sim.price[1] == 0.0  # 1 - 1 x (30 - 1) would be negative
    assert sim.equity[2] == 0.0
    values, _ = metrics.compute(sim, bars)
    assert values["total_return"] == -1.0
    assert all(v is None or math.isfinite(v) for v in values.values())


def test_metrics_of_the_hand_case() -> None:
    sim = simulate(HAND, np.array([True, False, False]), Costs(k_spread=0.5, fees_bps=10))
    values, reasons = metrics.compute(sim, HAND)
    final = 100_000 / (11.0 * 1.001) * 11.25 * 0.999
    assert values["total_return"] == pytest.approx(final / 100_000 - 1)
    assert values["hit_rate"] == 1.0 and values["avg_loss"] is None
    assert reasons["avg_loss"] == "no losing trade"
    # A trade's return: its PnL (both fees in) over the entry's notional, qty x price.
    entry_notional = 100_000 / 1.001
    assert values["avg_win"] == pytest.approx((final - 100_000) / entry_notional)
    assert values["fees_paid"] == pytest.approx(sum(sim.fee))
    slippage = sum(sim.slippage)
    assert values["slippage_share"] == pytest.approx(slippage / (slippage + sum(sim.fee)))


def test_flat_all_along_has_null_ratios_with_reasons() -> None:
    sim = simulate(HAND, np.array([False, False, False]), Costs(0.5, 10))
    values, reasons = metrics.compute(sim, HAND)
    assert values["total_return"] == 0.0 and values["max_drawdown"] == 0.0
    for name in ("sharpe", "sortino", "hit_rate", "avg_win", "avg_loss", "slippage_share"):
        assert values[name] is None and reasons[name]


def test_a_short_that_loses_everything_stops_trading_and_says_so() -> None:
    """Equity at zero or below: closed at the next open, nothing after, said in the metrics."""
    prices = [10.0, 10.0, 25.0, 30.0, 5.0, 4.0]
    bars = make_bars(prices, prices, prices, prices)
    targets = np.full(len(bars), -1.0)  # short all along, even after the loss
    sim = simulate(bars, targets, Costs(0.0, 0.0))
    # Short 10,000 at bar 1's open (10); at bar 2's close (25) the equity is
    # 200,000 - 10,000 x 25 = -50,000: bought back at bar 3's open, nothing after.
    assert sim.stopped_at == 2
    assert sim.fill_bar.tolist() == [1, 3] and sim.side.tolist() == [-1, 1]
    assert sim.position[3:].tolist() == [0.0, 0.0, 0.0]
    assert sim.equity[-1] == pytest.approx(100_000 - 10_000 * (30 - 10))
    fills, equity = oracle_exposure(bars, targets.tolist(), Costs(0.0, 0.0))
    assert_same_as_oracle(sim, fills, equity)
    values, reasons = metrics.compute(sim, bars)
    assert "fell to zero or below at bar 2" in reasons["trading"]
    assert values["total_return"] == pytest.approx(-2.0)
