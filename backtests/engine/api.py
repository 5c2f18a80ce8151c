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

import hashlib
import inspect
import keyword
import sys
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
        schema = dict(params or {})
        check_schema(strategy_id, target, schema)
        register(
            Strategy(
                strategy_id,
                rule,
                schema,
                compute,
                tuple(constraints),
                module=target.__module__,
                version=source_version(target),
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


def check_schema(strategy_id: str, target, params: dict[str, Param]) -> None:
    """Refuse a parameter schema that no run could satisfy, or that the code cannot take."""
    for name, param in params.items():
        where = f"strategy {strategy_id}, parameter {name!r}"
        if not isinstance(param, Param):
            raise TypeError(f"{where}: give a Param, not {type(param).__name__}")
        if not name.isidentifier() or keyword.iskeyword(name):
            raise TypeError(f"{where}: a parameter's name must be a Python identifier")
        if param.kind not in (int, float):
            raise TypeError(f"{where}: kind must be int or float, not {param.kind!r}")
        numbers = (param.default, param.minimum, param.maximum)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
            raise TypeError(f"{where}: default, minimum and maximum must be numbers")
        if not param.minimum <= param.default <= param.maximum:
            raise TypeError(
                f"{where}: the default {param.default} is not within "
                f"[{param.minimum}, {param.maximum}]"
            )
    if not inspect.isclass(target):
        names = list(inspect.signature(target).parameters)[1:]
        if sorted(names) != sorted(params):
            raise TypeError(
                f"strategy {strategy_id}: the function takes {names or 'no parameters'} after "
                f"the bars, but its schema declares {list(params) or 'none'}"
            )


def source_version(target) -> str:
    """A hash of the strategy's source: its module's, or its own when that is not a file."""
    module = sys.modules.get(target.__module__)
    try:
        text = inspect.getsource(module) if module is not None else inspect.getsource(target)
    except (OSError, TypeError):
        codes = [getattr(target, "__code__", None)] + [
            getattr(member, "__code__", None) for member in vars(target).values()
        ]
        text = repr([code.co_code for code in codes if code is not None])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
