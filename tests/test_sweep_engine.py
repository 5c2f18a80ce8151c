"""The engine's sweeps (backtests/engine/sweep.py, memo.py, walk_forward.py), without Django."""

import itertools
from datetime import date

import numpy as np
import pytest

from backtests.engine import indicators, memo, metrics, strategies, sweep, synthetic, walk_forward
from backtests.engine.bars import Bars
from backtests.engine.run import strategy_targets
from backtests.engine.simulation import Costs, simulate

COSTS = Costs(0.5, 1.0)
SMA = strategies.get("sma_crossover")


@pytest.fixture(scope="module")
def minute_bars():
    return synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 10), 130.0)


def normal_run_metrics(strategy, series, params, costs=COSTS) -> dict:
    """What a run computes (run.py's steps), outside any sweep."""
    target = strategy_targets(strategy, series, strategies.resolve_params(strategy, params), costs)
    return metrics.compute(simulate(series, target, costs), series)[0]


def test_grid_points_are_numbered_last_axis_fastest() -> None:
    axes = {"fast": (5, 10), "slow": (20, 30, 40)}
    assert sweep.grid_size(axes) == 6
    points = [sweep.variant_at(axes, i) for i in range(6)]
    assert points[:3] == [{"fast": 5, "slow": 20}, {"fast": 5, "slow": 30}, {"fast": 5, "slow": 40}]
    assert points[5] == {"fast": 10, "slow": 40}
    assert [sweep.index_of(axes, p) for p in points] == list(range(6))
    assert sweep.index_of(axes, {"fast": 7, "slow": 20}) is None


def test_ranges_include_their_end_and_keep_the_decimals_written() -> None:
    assert sweep.range_values(30, 100, 10, int) == [30, 40, 50, 60, 70, 80, 90, 100]
    assert sweep.range_values(0.1, 0.5, 0.1, float) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert sweep.range_values(1, 2, 5, int) == [1]


def test_constraint_breaking_points_are_skipped_and_counted() -> None:
    plan = sweep.plan(SMA, {"fast": (10, 20, 30), "slow": (20, 30)})
    assert plan.points == 6 and plan.skipped == 3
    assert [p for _, p in plan.variants] == [
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 30},
        {"fast": 20, "slow": 30},
    ]


def test_parameters_left_out_of_the_grid_take_their_defaults() -> None:
    plan = sweep.plan(strategies.get("mean_reversion"), {"window": (10, 20)})
    assert [p for _, p in plan.variants] == [
        {"window": 10, "band": 0.002},
        {"window": 20, "band": 0.002},
    ]


def test_random_draws_are_repeatable_with_a_seed_and_differ_without() -> None:
    axes = {"fast": tuple(range(1, 51)), "slow": tuple(range(60, 110))}
    first = sweep.plan(SMA, axes, "random", 40, seed=7)
    again = sweep.plan(SMA, axes, "random", 40, seed=7)
    other = sweep.plan(SMA, axes, "random", 40, seed=8)
    assert first.variants == again.variants and len(first.variants) == 40
    assert first.variants != other.variants
    numbers = [i for i, _ in first.variants]
    assert numbers == sorted(set(numbers))  # no point twice, in grid order
    assert (
        sweep.plan(SMA, axes, "random", 10_000, seed=1).variants == sweep.plan(SMA, axes).variants
    )


def test_every_variant_equals_a_normal_run(minute_bars) -> None:
    plan = sweep.plan(SMA, {"fast": (3, 5, 8), "slow": (10, 21, 34)})
    outcomes = sweep.evaluate(SMA, minute_bars, plan.variants, COSTS)
    assert len(outcomes) == 9
    for outcome in outcomes:
        assert outcome.metrics == normal_run_metrics(SMA, minute_bars, outcome.params)


@pytest.mark.parametrize("strategy_id", ["mean_reversion", "breakout", "sma_long_short"])
def test_shared_indicators_change_no_figure(strategy_id, minute_bars) -> None:
    strategy = strategies.get(strategy_id)
    name = next(iter(strategy.params))
    low = strategy.params[name].default
    axes = {name: (low, low * 2)}
    for index, params in sweep.plan(strategy, axes).variants:
        [outcome] = sweep.evaluate(strategy, minute_bars, [(index, params)], COSTS)
        shared = sweep.evaluate(strategy, minute_bars, sweep.plan(strategy, axes).variants, COSTS)
        assert outcome.metrics == next(o for o in shared if o.index == index).metrics


def test_a_window_mean_is_computed_once_per_sweep_and_callers_get_their_own_copy() -> None:
    close = np.linspace(1.0, 2.0, 200)
    calls = []
    real = indicators.compute_rolling_mean

    def counting(values, window):
        calls.append(window)
        return real(values, window)

    indicators.compute_rolling_mean, saved = counting, indicators.compute_rolling_mean
    try:
        with memo.shared():
            first = indicators.rolling_mean(close, 20)
            first[:] = 0.0  # a strategy may write into what it receives
            second = indicators.rolling_mean(close, 20)
            indicators.rolling_mean(close, 30)
        outside = indicators.rolling_mean(close, 20)
    finally:
        indicators.compute_rolling_mean = saved
    assert calls == [20, 30, 20]  # once per window inside the sweep; again outside it
    assert np.array_equal(second, outside, equal_nan=True)


def test_a_failing_variant_records_its_error_and_the_rest_go_on(minute_bars) -> None:
    from backtests.engine.api import Param, strategy

    @strategy(params={"n": Param(int, 1, 1, 10, "n")}, id="fails_on_three")
    def fails_on_three(bars, n):
        """Long, except that n == 3 raises."""
        if n == 3:
            raise ValueError("three")
        return np.ones(len(bars), dtype=bool)

    try:
        outcomes = sweep.evaluate(
            strategies.get("fails_on_three"),
            minute_bars,
            [(0, {"n": 2}), (1, {"n": 3}), (2, {"n": 4})],
            COSTS,
        )
    finally:
        strategies.REGISTRY.pop("fails_on_three")
    assert [o.metrics is None for o in outcomes] == [False, True, False]
    assert "raised ValueError" in outcomes[1].error and "three" in outcomes[1].error


def test_best_is_the_highest_figure_ties_to_the_lower_number_and_never_a_null() -> None:
    def outcome(index, value):
        return sweep.Outcome(index, {}, {"sharpe": value})

    assert sweep.best([outcome(0, None), outcome(1, 0.5), outcome(2, 0.5)], "sharpe").index == 1
    assert sweep.best([outcome(3, 2.0), outcome(1, -1.0)], "sharpe").index == 3
    assert sweep.best([outcome(0, None)], "sharpe") is None


def test_walk_forward_windows_by_bars() -> None:
    ts = np.arange(100, dtype=np.int64) * 60 * 10**9
    found = walk_forward.windows(ts, {"bars": 40}, {"bars": 20}, {"bars": 20})
    assert [(w.train_start, w.train_stop, w.test_stop) for w in found] == [
        (0, 40, 60),
        (20, 60, 80),
        (40, 80, 100),
    ]
    with pytest.raises(walk_forward.WindowsError, match="overlap"):
        walk_forward.windows(ts, {"bars": 40}, {"bars": 20}, {"bars": 10})
    with pytest.raises(walk_forward.WindowsError, match="no whole window"):
        walk_forward.windows(ts, {"bars": 90}, {"bars": 20}, {"bars": 20})


def hourly_weekend_bars(days: int = 12) -> Bars:
    """Hourly bars around the clock, weekends included (a crypto or FX shape)."""
    ts = (
        np.datetime64("2024-01-05T00:00", "ns").astype(np.int64)
        + np.arange(days * 24) * 3600 * 10**9
    )
    close = 1.0 + 0.01 * np.sin(np.arange(len(ts)) / 7)
    return Bars(ts, close, close + 0.001, close - 0.001, close, np.ones(len(ts)), "1h", "UTC")


def test_walk_forward_windows_by_duration_on_hourly_weekend_bars() -> None:
    series = hourly_weekend_bars()
    day = {"seconds": 86_400}
    found = walk_forward.windows(series.ts, {"seconds": 3 * 86_400}, day, day)
    assert len(found) >= 2
    for window in found:
        start, stop = series.ts[window.test_start], series.ts[window.test_stop - 1]
        assert stop - start < 86_400 * 10**9
        assert series.ts[window.test_stop] >= start + 86_400 * 10**9  # the day is whole
        assert window.test_start == window.train_stop


def test_walk_forward_chooses_on_training_and_judges_the_next_part_by_hand(minute_bars) -> None:
    series = minute_bars
    plan = sweep.plan(SMA, {"fast": (3, 8), "slow": (13, 30)})
    count = len(series)
    third = count // 3
    window = walk_forward.Window(0, 0, 2 * third, count)
    result = walk_forward.evaluate_window(SMA, series, window, plan.variants, COSTS, "sharpe")
    # By hand: each variant on the training bars, the best Sharpe, then its targets over
    # all the bars (warm indicators) simulated on the test bars from a flat account.
    train = walk_forward.slice_bars(series, 0, 2 * third)
    scores = {i: normal_run_metrics(SMA, train, p)["sharpe"] for i, p in plan.variants}
    chosen = max(scores, key=lambda i: (scores[i], -i))
    assert result.chosen.index == chosen
    params = dict(plan.variants)[chosen]
    targets = strategy_targets(SMA, series, params, COSTS)[2 * third :]
    test = walk_forward.slice_bars(series, 2 * third, count)
    expected = metrics.compute(simulate(test, targets, COSTS), test)[0]
    assert result.test_metrics == expected


def test_the_stitched_run_trades_each_test_part_with_its_windows_choice(minute_bars) -> None:
    series = minute_bars
    windows = walk_forward.windows(series.ts, {"bars": 1000}, {"bars": 500}, {"bars": 500})[:3]
    choices = [
        (windows[0], {"fast": 3, "slow": 13}),
        (windows[1], None),
        (windows[2], {"fast": 8, "slow": 30}),
    ]
    bars, sim, values, _ = walk_forward.stitched(SMA, series, choices, COSTS)
    assert len(bars) == 1500 and np.all(np.diff(bars.ts) > 0)
    # Flat through the window without a choice (one bar late: an order fills at the next open).
    assert np.all(sim.position[502:1000] == 0)
    assert values["total_return"] == pytest.approx(sim.equity[-1] / 100_000 - 1)


def test_walk_forward_windows_by_duration_are_anchored_in_time_across_nights(minute_bars) -> None:
    ts = minute_bars.ts
    day = 86_400
    found = walk_forward.windows(
        ts, {"seconds": 4 * day}, {"seconds": 2 * day}, {"seconds": 2 * day}
    )
    assert len(found) >= 2
    anchors = [int(ts[0]) + k * 2 * day * 10**9 for k in range(20)]
    for window in found:
        # Each part starts at the first bar at or after its edge in time.
        starts = [a for a in anchors if np.searchsorted(ts, a) == window.train_start]
        assert starts, window
        edge = starts[0]
        assert window.train_stop == np.searchsorted(ts, edge + 4 * day * 10**9)
        assert window.test_stop == np.searchsorted(ts, edge + 6 * day * 10**9)
    tests = [(w.test_start, w.test_stop) for w in found]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(tests))  # no overlap
    with pytest.raises(walk_forward.WindowsError, match="overlap"):
        walk_forward.windows(ts, {"seconds": 4 * day}, {"seconds": 2 * day}, {"seconds": day})


def test_the_shared_cache_keeps_to_its_bytes_dropping_the_least_recently_used() -> None:
    close = np.linspace(1.0, 2.0, 1000)  # each mean: 8,000 bytes
    with memo.shared(max_bytes=20_000) as cache:
        for window in (10, 20, 30):
            indicators.rolling_mean(close, window)
        assert cache.bytes <= 20_000
        kept = {slot[2] for slot in cache.entries if slot[0] == "rolling_mean"}
        assert kept == {20, 30}  # 10, the least recently used, went
        indicators.rolling_mean(close, 20)  # used again: now the most recent
        indicators.rolling_mean(close, 40)
        kept = {slot[2] for slot in cache.entries if slot[0] == "rolling_mean"}
        assert kept == {20, 40}
