"""The public strategy API (docs/strategies.md): its examples run; outputs checked; a
failing strategy fails its run, not the worker; bar-by-bar equals vectorised."""

import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from backtests.engine import run as engine
from backtests.engine import strategies, synthetic
from backtests.engine.api import BarStrategy, Param, strategy
from backtests.engine.simulation import Costs, simulate
from backtests.engine.strategies import StrategyOutputError

DOC = Path(__file__).resolve().parent.parent / "docs" / "strategies.md"
BARS = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 10), 130.0)


@pytest.fixture(autouse=True)
def registry():
    """Strategies a test registers are gone after it."""
    before = dict(strategies.REGISTRY)
    yield strategies.REGISTRY
    strategies.REGISTRY.clear()
    strategies.REGISTRY.update(before)


def doc_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_docs_examples_register_and_run() -> None:
    for code in doc_examples():
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})
    sized = strategies.get("example_sized_long_short")
    assert sized.rule.startswith("Hold `size` long while SMA(fast) > SMA(slow)")
    targets = strategies.signal("example_sized_long_short", {}, BARS)
    assert set(np.unique(targets)) <= {-0.5, 0.0, 0.5} and (targets < 0).any()
    timed = strategies.signal("example_time_exit", {"hold": 3}, BARS)
    sim = simulate(BARS, timed, Costs(0.02, 1))
    held = np.flatnonzero(np.diff(np.concatenate(([0.0], timed))) > 0)
    assert len(held) and len(sim.side) >= 2


def test_the_long_short_built_in_goes_short() -> None:
    targets = strategies.signal("sma_long_short", {"fast": 5, "slow": 20}, BARS)
    sim = simulate(BARS, targets, Costs(0, 0))
    assert (sim.position < 0).any() and (sim.position > 0).any()
    assert np.array_equal(targets[:19], np.zeros(19))  # flat until SMA(20) exists


class BarCrossover(BarStrategy):
    """SMA(fast) > SMA(slow), one bar at a time: the vectorised built-in's rule."""

    def start(self, fast, slow):
        self.fast, self.slow = fast, slow

    def next(self, i):
        if i + 1 < self.slow:
            return 0.0
        cents = [round(c * 100) for c in self.close[i + 1 - self.slow : i + 1]]
        # Exact, in whole cents: mean(fast) > mean(slow).
        return float(sum(cents[-self.fast :]) * self.slow > sum(cents) * self.fast)


def test_the_bar_by_bar_form_equals_the_vectorised_rule() -> None:
    strategy(params={"fast": Param(int, 5, 1, 100, ""), "slow": Param(int, 20, 2, 100, "")})(
        BarCrossover
    )
    costs = Costs(0.02, 1)
    by_bar = strategies.signal("BarCrossover", {}, BARS, costs)
    vectorised = strategies.signal("sma_crossover", {"fast": 5, "slow": 20}, BARS)
    a, b = simulate(BARS, by_bar, costs), simulate(BARS, vectorised, costs)
    assert a.fill_bar.tolist() == b.fill_bar.tolist()
    np.testing.assert_allclose(a.equity, b.equity, rtol=1e-12)


def test_the_account_a_bar_strategy_sees_is_the_simulations() -> None:
    seen = []

    @strategy(id="watcher")
    class Watcher(BarStrategy):
        """Long on even bars, flat on odd ones, noting the account."""

        def next(self, i):
            seen.append((self.qty, self.equity))
            return float(i % 2 == 0)

    costs = Costs(0.5, 10)
    targets = strategies.signal("watcher", {}, BARS, costs)
    sim = simulate(BARS, targets, costs)
    np.testing.assert_allclose([q for q, _ in seen], sim.position, rtol=1e-12)
    np.testing.assert_allclose([e for _, e in seen], sim.equity, rtol=1e-12)


def test_the_trailing_stop_exits_below_the_peak() -> None:
    closes = [10, 10, 10, 11, 12, 13, 12.5, 12.3, 12, 11, 11, 11]
    bars = type(BARS)(
        np.arange(len(closes)) * 60_000_000_000,
        np.array(closes, float),
        np.array(closes, float),
        np.array(closes, float),
        np.array(closes, float),
        np.ones(len(closes)),
    )
    targets = strategies.signal("trailing_stop", {"channel": 2, "stop": 0.05}, bars)
    # In on the close above the two before (bar 3, 11 > 10), out on the first close 5%
    # under the peak of 13 (bar 7: 12.3 < 12.35).
    assert targets.tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]


def user(name, output):
    """A strategy that returns `output` (a function of the bars)."""

    def rule(bars):
        """Returns what the test asks for."""
        return output(bars)

    rule.__name__ = name
    return strategy(id=name)(rule)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (lambda b: np.ones(len(b) - 1), "returned 3,119 values in shape (3119,) for 3,120 bars"),
        (lambda b: np.full(len(b), 1.5), "returned 1.5 at bar 0"),
        (lambda b: np.where(np.arange(len(b)) == 7, np.nan, 0.0), "returned nan at bar 7"),
        (lambda b: np.array(["long"] * len(b)), "returned <U4 values"),
        (lambda b: None, "returned None"),
        (lambda b: np.ones((len(b), 2)), "in shape (3120, 2) for 3,120 bars"),
    ],
)
def test_a_bad_output_is_refused_naming_the_strategy(output, expected) -> None:
    user("bad_output", output)
    with pytest.raises(StrategyOutputError, match=re.escape(expected)) as refused:
        strategies.signal("bad_output", {}, BARS)
    assert "strategy bad_output" in str(refused.value)


def test_an_exception_in_a_strategy_is_the_runs_error(tmp_path) -> None:
    def explode(bars):
        return 1 / 0

    user("explodes", explode)
    path = tmp_path / "bars.parquet"
    from backtests.engine import bars as engine_bars

    engine_bars.write(BARS, path)
    inputs = engine.RunInputs("r1", "d", "explodes", {}, 0, {"k_spread": 0, "fees_bps": 0})
    with pytest.raises(engine.EngineError) as failed:
        engine.run(inputs, path, tmp_path / "out")
    message = str(failed.value)
    assert message.startswith("strategy explodes raised ZeroDivisionError at test_strategy_api.py:")
    assert message.endswith(": division by zero")
    assert not (tmp_path / "out").exists()


def test_an_id_taken_twice_and_a_rule_without_a_docstring_are_refused() -> None:
    with pytest.raises(strategies.DuplicateStrategy, match="'momentum' is defined twice"):

        @strategy(id="momentum")
        def again(bars):
            """Again."""
            return np.zeros(len(bars))

    with pytest.raises(TypeError, match="has no docstring"):

        @strategy()
        def undocumented(bars):
            return np.zeros(len(bars))


def test_a_strategy_that_never_ends_is_stopped_by_the_time_limit(settings, db, tmp_path) -> None:
    import time

    from backtests.catalog.bars_import import store_bars
    from backtests.jobs.execute import execute
    from backtests.models import Run
    from tests.catalog_factories import make_run

    def forever(bars):
        while True:
            time.sleep(0.01)

    user("forever", forever)
    settings.JOB_RUN_TIMEOUT_SECONDS = 0.5
    dataset = store_bars("AAPL-1m", BARS, "AAPL").dataset
    run = make_run(dataset, status="QUEUED", strategy_id="forever", params={})
    started = time.monotonic()
    assert execute(run.run_id, "test") == "ERROR"
    assert time.monotonic() - started < 5
    error = Run.objects.get(pk=run.pk).error
    assert error.startswith("the run took longer than its time limit (0.5 s")
    # The worker goes on: the next run computes.
    other = make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20})
    assert execute(other.run_id, "test") == "DONE"


def test_a_bad_output_ends_its_run_in_error(db) -> None:
    from backtests.catalog.bars_import import store_bars
    from backtests.jobs.execute import execute
    from backtests.models import Run
    from tests.catalog_factories import make_run

    user("too_long", lambda b: np.zeros(len(b) + 1))
    dataset = store_bars("AAPL-1m", BARS, "AAPL").dataset
    run = make_run(dataset, status="QUEUED", strategy_id="too_long", params={})
    assert execute(run.run_id, "test") == "ERROR"
    assert Run.objects.get(pk=run.pk).error == (
        "strategy too_long returned 3,121 values in shape (3121,) for 3,120 bars: give one "
        "target per bar"
    )
