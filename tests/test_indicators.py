"""Rolling means decide crossovers as exact arithmetic would: equal windows compare equal."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from backtests.engine import strategies, synthetic
from backtests.engine.bars import Bars
from backtests.engine.indicators import decimal_ticks, rolling_mean
from backtests.engine.simulation import Costs, simulate


def exact_means(prices: list[str], window: int) -> list[Fraction | None]:
    """Each bar's mean of the last `window` prices, as exact fractions of the decimal text."""
    values = [Fraction(Decimal(p)) for p in prices]
    out: list[Fraction | None] = [None] * len(values)
    total = Fraction(0)
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        if i >= window - 1:
            out[i] = total / window
    return out


def exact_crossover(prices: list[str], fast: int, slow: int) -> np.ndarray:
    """sma_crossover's rule in exact arithmetic: long where mean(fast) > mean(slow)."""
    f, s = exact_means(prices, fast), exact_means(prices, slow)
    return np.array([a is not None and b is not None and a > b for a, b in zip(f, s, strict=True)])


def constant_bars(price: float, n: int) -> Bars:
    ts = np.arange(n, dtype=np.int64) * 60_000_000_000
    values = np.full(n, price)
    return Bars(ts, values, values, values, values, np.ones(n))


@pytest.mark.parametrize("price", [1.1, 0.3, 123.45, 1.07219, 0.00002345])
def test_a_constant_price_never_crosses(price: float) -> None:
    bars = constant_bars(price, 500)
    long = strategies.signal("sma_crossover", {"fast": 20, "slow": 50}, bars)
    assert not long.any()
    sim = simulate(bars, long, Costs(0, 1))
    assert len(sim.side) == 0
    # Equal means: mean reversion with no band is entered nowhere (close is at the mean).
    assert not strategies.signal("mean_reversion", {"window": 30, "band": 0.0}, bars).any()


def test_the_demos_crossovers_match_exact_arithmetic() -> None:
    series = synthetic.generate("AAPL", date(2023, 1, 1), date(2023, 2, 28), 130.0)
    prices = [f"{p:.2f}" for p in series.close]
    for fast, slow in ((5, 10), (20, 50)):
        engine = strategies.signal("sma_crossover", {"fast": fast, "slow": slow}, series)
        assert np.array_equal(engine, exact_crossover(prices, fast, slow))


def test_pip_prices_and_long_windows_match_exact_arithmetic() -> None:
    rng = np.random.default_rng(7)
    close = np.round(1.1 + np.cumsum(rng.integers(-3, 4, 6_000)) * 1e-5, 5)
    prices = [f"{p:.5f}" for p in close]
    series = Bars(np.arange(len(close)) * 3_600_000_000_000, close, close, close, close, close)
    engine = strategies.signal("sma_crossover", {"fast": 100, "slow": 200}, series)
    assert np.array_equal(engine, exact_crossover(prices, 100, 200))


@settings(max_examples=60, deadline=None)
@given(
    ticks=st.lists(st.integers(1, 10**6), min_size=2, max_size=200),
    places=st.integers(0, 8),
    window=st.integers(1, 60),
)
@example(ticks=[1, 1], places=6, window=1)  # 0.000001: within 1e-6 of no tick at all
@example(ticks=[1_000_001, 1_000_001, 999_999], places=6, window=2)  # 1.000001, not 1
def test_on_a_decimal_tick_each_mean_is_the_exact_mean_rounded(ticks, places, window) -> None:
    scale = 10**places
    prices = [str(Decimal(t) / scale) for t in ticks]
    values = np.array([float(p) for p in prices])
    means = rolling_mean(values, window)
    for got, exact in zip(means, exact_means(prices, window), strict=True):
        if exact is None:
            assert np.isnan(got)
        else:
            assert got == float(exact)  # correctly rounded: equal means give equal floats


def test_prices_on_no_decimal_tick_fall_back_to_an_anchored_sum() -> None:
    rng = np.random.default_rng(3)
    values = 100 + rng.normal(0, 1, 2_000) * np.pi
    assert decimal_ticks(values) is None
    means = rolling_mean(values, 50)
    exact = exact_means([str(Decimal(float(v))) for v in values], 50)
    worst = max(abs(float(e) - m) for m, e in zip(means, exact, strict=True) if e is not None)
    assert worst < 1e-10
