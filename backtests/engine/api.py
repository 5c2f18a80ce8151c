"""The public strategy API: what a user's strategy module imports (docs/strategies.md).

    import numpy as np
    from backtests.engine.api import Param, strategy

    @strategy(params={"fast": Param(int, 10, 1, 1000, "fast window")})
    def my_rule(bars, fast):
        \"\"\"The rule, in one line: what GET /strategies shows.\"\"\"
        return ...  # one target exposure per bar, in [-1, 1]

A vectorised strategy is a function of the bars and its parameters; a bar-by-bar one is a
`BarStrategy` subclass. Either is registered by `@strategy` under its name (or `id=`).
"""

import inspect
from collections.abc import Callable, Iterable

from backtests.engine.bar_by_bar import BarStrategy, run_bar_by_bar
from backtests.engine.bars import Bars
from backtests.engine.strategies import Param, Strategy, register

__all__ = ["BarStrategy", "Bars", "Param", "strategy"]

Constraint = tuple[Callable[[dict], bool], str]


def strategy(
    params: dict[str, Param] | None = None,
    constraints: Iterable[Constraint] = (),
    id: str | None = None,
):
    """Register a strategy: a function (bars, **params) -> targets, or a BarStrategy."""

    def register_it(target):
        strategy_id = id or target.__name__
        rule = first_line(target, strategy_id)
        if inspect.isclass(target) and issubclass(target, BarStrategy):

            def compute(bars, values, costs):
                return run_bar_by_bar(target, bars, values, costs)
        elif callable(target):

            def compute(bars, values, costs):
                return target(bars, **values)
        else:
            raise TypeError(f"@strategy goes on a function or a BarStrategy, not {target!r}")
        register(
            Strategy(
                strategy_id,
                rule,
                dict(params or {}),
                compute,
                tuple(constraints),
                module=target.__module__,
            )
        )
        return target

    return register_it


def first_line(target, strategy_id: str) -> str:
    """The docstring's first line: the rule people read."""
    doc = inspect.getdoc(target)
    if not doc:
        raise TypeError(f"strategy {strategy_id} has no docstring: its first line is its rule")
    return doc.splitlines()[0]
