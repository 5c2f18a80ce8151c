"""Parameter sweeps: a grid over a strategy's parameters, its variants, each one computed
the way a run is (docs/sweeps.md).

A grid is an ordered mapping of parameter names to their values (the axes). Its points
are numbered in mixed radix, the last axis fastest, so that a variant's number says which
point it is without listing the grid. `plan` picks the variants (every point, or a seeded
sample) and leaves out those that break the strategy's constraints; `evaluate` computes
their metrics over one bar series, sharing indicator work across them (memo.py).
"""

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from backtests.engine import memo, metrics, strategies
from backtests.engine.bars import Bars
from backtests.engine.run import EngineError, checkpoint, strategy_targets
from backtests.engine.simulation import Costs, simulate

Axes = dict[str, tuple]  # parameter name -> its values, in the order given
METHODS = ("grid", "random", "walk_forward")
# A float axis value from {"from", "to", "step"} is rounded to this many significant
# digits, so that 0.1 + 2 x 0.1 is 0.3, as the user wrote it, not 0.30000000000000004.
SIGNIFICANT = 12


def grid_size(axes: Axes) -> int:
    """How many points the grid has (1 for a strategy without parameters)."""
    return math.prod(len(values) for values in axes.values())


def variant_at(axes: Axes, index: int) -> dict:
    """The grid point numbered `index` (0-based, the last axis fastest)."""
    point = {}
    for name in reversed(list(axes)):
        values = axes[name]
        index, position = divmod(index, len(values))
        point[name] = values[position]
    return {name: point[name] for name in axes}


def index_of(axes: Axes, params: dict) -> int | None:
    """The number of the grid point with these parameter values; None if it is not one."""
    index = 0
    for name, values in axes.items():
        if name not in params:
            return None
        position = next((i for i, v in enumerate(values) if v == params[name]), None)
        if position is None:
            return None
        index = index * len(values) + position
    return index


def range_values(start: float, stop: float, step: float, kind: type) -> list:
    """from, from + step, ... up to `stop` inclusive (within rounding)."""
    count = math.floor((stop - start) / step + 1e-9) + 1
    if kind is int:
        return [int(start) + i * int(step) for i in range(count)]
    return [float(f"{start + i * step:.{SIGNIFICANT}g}") for i in range(count)]


@dataclass(frozen=True)
class Plan:
    """The variants to compute, as (grid number, resolved parameters), and how many of
    the points chosen were left out because they break the strategy's constraints."""

    variants: list[tuple[int, dict]]
    skipped: int
    points: int  # the grid's size


def chosen_points(size: int, method: str, max_variants: int | None, seed: int) -> Iterable[int]:
    """The grid numbers a sweep looks at: all of them in order, or a seeded sample."""
    if method != "random" or max_variants is None or max_variants >= size:
        return range(size)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(size, size=max_variants, replace=False)).tolist()


def plan(
    strategy: strategies.Strategy,
    axes: Axes,
    method: str = "grid",
    max_variants: int | None = None,
    seed: int = 0,
) -> Plan:
    """The variants of a sweep: each point's parameters with the defaults filled in and
    checked (strategies.resolve_params); points breaking a constraint are skipped.

    The axes' values must fit the parameters' types and bounds already (the API checks
    them one by one); so a point fails only on a constraint across parameters.
    """
    size = grid_size(axes)
    variants, skipped = [], 0
    for index in chosen_points(size, method, max_variants, seed):
        try:
            variants.append((index, strategies.resolve_params(strategy, variant_at(axes, index))))
        except strategies.ParamsError:
            skipped += 1
    return Plan(variants, skipped, size)


@dataclass(frozen=True)
class Outcome:
    """One variant's figures (metrics.FIELDS, each a float or None), or why it failed."""

    index: int
    params: dict
    metrics: dict | None
    error: str = ""
    fills: int = 0


def evaluate(
    strategy: strategies.Strategy,
    series: Bars,
    variants: Sequence[tuple[int, dict]],
    costs: Costs,
    should_stop: Callable[[], bool] | None = None,
) -> list[Outcome]:
    """Each variant's metrics over the bars, computed as a run computes them (run.py):
    the strategy's targets, the simulation, the metrics. A variant whose strategy fails
    records the run's error message; the others go on. `should_stop` is asked between
    variants; True there raises run.Stopped.
    """
    outcomes = []
    with memo.shared():
        for index, params in variants:
            checkpoint(should_stop, f"variant {index}")
            outcomes.append(evaluate_one(strategy, series, index, params, costs))
    return outcomes


def evaluate_one(
    strategy: strategies.Strategy, series: Bars, index: int, params: dict, costs: Costs
) -> Outcome:
    """One variant's outcome."""
    try:
        target = strategy_targets(strategy, series, params, costs)
    except EngineError as exc:
        return Outcome(index, params, None, str(exc))
    sim = simulate(series, target, costs)
    values, _ = metrics.compute(sim, series)
    return Outcome(index, params, values, fills=len(sim.side))


def best(outcomes: Iterable[Outcome], maximize: str) -> Outcome | None:
    """The outcome with the highest `maximize` figure; ties go to the lower grid number,
    and a variant without the figure (None) is never the best."""
    scored = [o for o in outcomes if o.metrics is not None and o.metrics[maximize] is not None]
    if not scored:
        return None
    return min(scored, key=lambda o: (-o.metrics[maximize], o.index))
