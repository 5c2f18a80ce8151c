"""The strategy registry: each strategy's rule, parameter schema and targets.

A strategy maps bars to **target exposures**, one per bar: the fraction of equity to hold
from bar t's close, positive long, negative short, in [-1, 1] (a boolean array means long
or flat). The simulation fills a change at bar t+1's open (docs/engine.md). Strategies are
registered with `backtests.engine.api.strategy`, the built-ins (builtins.py) like any
other; their output is checked here, so that a bad one ends its run with a message.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from backtests.engine.bars import Bars
from backtests.engine.simulation import Costs

NO_COSTS = Costs(0.0, 0.0)


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default and inclusive bounds."""

    kind: type
    default: int | float
    minimum: int | float
    maximum: int | float
    doc: str

    def describe(self) -> dict:
        """The parameter as the API lists it."""
        return {
            "type": "integer" if self.kind is int else "number",
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.doc,
        }


@dataclass(frozen=True)
class Strategy:
    """A registered strategy."""

    strategy_id: str
    rule: str
    params: dict[str, Param]
    # (bars, params, costs) -> the raw targets; costs matter to bar-by-bar strategies only
    compute: Callable[[Bars, dict, Costs], np.ndarray]
    # Rules across parameters: (check, message) pairs.
    constraints: tuple[tuple[Callable[[dict], bool], str], ...] = field(default=())
    module: str = ""
    version: str = ""  # a hash of its source: a run records the version it ran

    def describe(self) -> dict:
        """The strategy as GET /strategies lists it."""
        return {
            "strategy_id": self.strategy_id,
            "rule": self.rule,
            "params": {name: param.describe() for name, param in self.params.items()},
            "constraints": [message for _, message in self.constraints],
            "module": self.module,
            "version": self.version,
        }

    def targets(self, bars: Bars, params: dict, costs: Costs = NO_COSTS) -> np.ndarray:
        """The strategy's target exposures over bars, checked (StrategyOutputError)."""
        return checked_targets(self.strategy_id, self.compute(bars, params, costs), len(bars))


class ParamsError(ValueError):
    """Parameters that do not fit a strategy's schema: {field: rule}."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


class UnknownStrategy(KeyError):
    """A strategy id that is not registered."""


class StrategyOutputError(ValueError):
    """A strategy returned something that is not one target per bar in [-1, 1]."""


class DuplicateStrategy(ValueError):
    """Two strategies with one id."""


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> None:
    """Add a strategy to the registry; DuplicateStrategy if its id is taken."""
    taken = REGISTRY.get(strategy.strategy_id)
    if taken is not None:
        raise DuplicateStrategy(
            f"strategy id {strategy.strategy_id!r} is defined twice: in {taken.module} and "
            f"in {strategy.module}"
        )
    REGISTRY[strategy.strategy_id] = strategy


def checked_targets(strategy_id: str, raw, bars: int) -> np.ndarray:
    """A strategy's output as float targets, or StrategyOutputError naming the problem."""
    if raw is None:
        raise StrategyOutputError(f"strategy {strategy_id} returned None: give one target per bar")
    try:
        values = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        raise StrategyOutputError(
            f"strategy {strategy_id} returned {type(raw).__name__}, not an array ({exc})"
        ) from None
    if values.shape != (bars,):
        raise StrategyOutputError(
            f"strategy {strategy_id} returned {values.size:,} values in shape {values.shape} "
            f"for {bars:,} bars: give one target per bar"
        )
    if values.dtype == np.bool_:
        return values.astype(np.float64)
    if not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise StrategyOutputError(
            f"strategy {strategy_id} returned {values.dtype} values: give numbers in [-1, 1]"
        )
    values = values.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values) | (np.abs(values) > 1))
    if len(bad):
        first = int(bad[0])
        raise StrategyOutputError(
            f"strategy {strategy_id} returned {float(values[first])!r} at bar {first} "
            f"({len(bad):,} bad values): a target is a finite number in [-1, 1]"
        )
    return values


def get(strategy_id: str) -> Strategy:
    """A registered strategy; UnknownStrategy names the known ones."""
    try:
        return REGISTRY[strategy_id]
    except KeyError:
        raise UnknownStrategy(strategy_id) from None


def resolve_params(strategy: Strategy, params: dict) -> dict:
    """Params with defaults filled in, checked against the schema; ParamsError if not."""
    problems: dict[str, str] = {}
    if not isinstance(params, dict):
        raise ParamsError({"params": "must be an object"})
    for name in params:
        if name not in strategy.params:
            known = ", ".join(strategy.params) or "none"
            problems[f"params.{name}"] = f"unknown parameter (known: {known})"
    resolved = {}
    for name, param in strategy.params.items():
        value = params.get(name, param.default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems[f"params.{name}"] = (
                f"must be a{'n integer' if param.kind is int else ' number'}"
            )
            continue
        if param.kind is int:
            if value != int(value):
                problems[f"params.{name}"] = "must be an integer"
                continue
            value = int(value)
        else:
            value = float(value)
        if not param.minimum <= value <= param.maximum:
            problems[f"params.{name}"] = f"must be between {param.minimum} and {param.maximum}"
            continue
        resolved[name] = value
    if not problems:
        for check, message in strategy.constraints:
            if not check(resolved):
                problems["params"] = message
    if problems:
        raise ParamsError(problems)
    return resolved


def signal(strategy_id: str, params: dict, bars: Bars, costs: Costs = NO_COSTS) -> np.ndarray:
    """The targets of a strategy over bars (params resolved and checked first)."""
    strategy = get(strategy_id)
    return strategy.targets(bars, resolve_params(strategy, params), costs)


# The built-ins register themselves through the public API, like any user's module.
from backtests.engine import builtins  # noqa: E402, F401
