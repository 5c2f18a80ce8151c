"""Validation of the sweeps API's input: the create body and the results and heatmap
queries. Plain functions over plain data, each raising catalog's `ValidationError` with
every offending field named (docs/sweeps.md, docs/api/openapi.yaml)."""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings

from backtests.catalog.validation import (
    MAX_SEED,
    STRATEGY_PATTERN,
    ValidationError,
    dataset_source,
    is_integer,
    is_number,
    non_finite_numbers,
    paging,
    parse_json_object,
    parse_slippage_fees,
    single_values,
)
from backtests.engine import strategies
from backtests.engine.metrics import FIELDS
from backtests.engine.sweep import METHODS, Axes, grid_size, range_values
from backtests.engine.walk_forward import DURATION_UNITS

CREATE_FIELDS = frozenset(
    {
        "dataset_id",
        "symbol",
        "from",
        "to",
        "strategy_id",
        "grid",
        "method",
        "max_variants",
        "maximize",
        "seed",
        "slippage_fees",
        "train",
        "test",
        "step",
    }
)
RANGE_FIELDS = ("from", "to", "step")
WINDOW_FIELDS = ("train", "test", "step")
DURATION = re.compile(r"([1-9][0-9]{0,8})([a-z]+)")
AGGREGATES = ("max", "min", "mean", "median")
RESULT_ORDERS = frozenset({"variant", *FIELDS})
_MISSING = object()


@dataclass(frozen=True, slots=True)
class SweepRequest:
    """A valid POST /sweeps body. Exactly one of dataset_id or symbol/from/to is set.

    A walk-forward window length is {"bars": n} or {"seconds": s} (a duration)."""

    strategy_id: str
    axes: Axes
    method: str
    max_variants: int | None
    maximize: str
    seed: int
    slippage_fees: dict[str, int | float]
    walk_forward: dict[str, dict[str, int]] = field(default_factory=dict)
    dataset_id: str | None = None
    symbol: str | None = None
    from_date: date | None = None
    to_date: date | None = None


def parse_sweep_request(body: bytes) -> SweepRequest:
    """Validate a POST /sweeps body."""
    data = parse_json_object(body)
    problems: dict[str, str] = {}
    for name in sorted(set(data) - CREATE_FIELDS):
        problems[name] = "unknown field"
    problems.update(non_finite_numbers(data, "body"))
    source = dataset_source(data, problems)
    strategy = parse_strategy(data.get("strategy_id", _MISSING), problems)
    method = data.get("method", "grid")
    if method not in METHODS:
        problems["method"] = f"must be one of: {', '.join(METHODS)}"
    axes = parse_grid(data.get("grid", _MISSING), strategy, problems) if strategy else {}
    max_variants = parse_max_variants(data.get("max_variants", _MISSING), method, problems)
    if strategy and not any(name.startswith("grid") for name in problems):
        check_size(axes, method, max_variants, problems)
    maximize = data.get("maximize", "sharpe")
    if maximize not in FIELDS:
        problems["maximize"] = f"must be a metric: {', '.join(FIELDS)}"
    seed = data.get("seed", 0)
    if not is_integer(seed) or not 0 <= seed <= MAX_SEED:
        problems["seed"] = f"must be an integer from 0 to {MAX_SEED}"
    slippage_fees = parse_slippage_fees(data.get("slippage_fees", _MISSING), problems)
    walk_forward = parse_windows(data, method, problems)
    if problems:
        raise ValidationError("invalid request body", problems)
    return SweepRequest(
        strategy_id=strategy.strategy_id,
        axes=axes,
        method=method,
        max_variants=max_variants,
        maximize=maximize,
        seed=seed,
        slippage_fees=slippage_fees,
        walk_forward=walk_forward,
        **source,
    )


def parse_strategy(value: Any, problems: dict[str, str]) -> strategies.Strategy | None:
    """The registered strategy a sweep names."""
    if value is _MISSING:
        problems["strategy_id"] = "required"
    elif not isinstance(value, str) or not STRATEGY_PATTERN.fullmatch(value):
        problems["strategy_id"] = "must be a strategy id"
    elif value not in strategies.REGISTRY:
        problems["strategy_id"] = f"unknown strategy; known: {', '.join(strategies.REGISTRY)}"
    else:
        return strategies.get(value)
    return None


def parse_grid(value: Any, strategy: strategies.Strategy, problems: dict[str, str]) -> Axes:
    """The grid: each named parameter's values, as a list or {"from", "to", "step"}; each
    value checked against the parameter's type and bounds, as a run's parameters are.
    Parameters left out of the grid take their defaults."""
    if value is _MISSING:
        problems["grid"] = "required: an object of parameter -> values"
        return {}
    if not isinstance(value, dict):
        problems["grid"] = "must be an object of parameter -> values"
        return {}
    axes: Axes = {}
    for name, given in value.items():
        param = strategy.params.get(name)
        if param is None:
            known = ", ".join(strategy.params) or "none"
            problems[f"grid.{name}"] = f"unknown parameter (known: {known})"
            continue
        values = axis_values(f"grid.{name}", given, param, problems)
        if values:
            axes[name] = tuple(values)
    return axes


def axis_values(path: str, given: Any, param: strategies.Param, problems: dict[str, str]):
    """One axis's values, or None with its problems recorded."""
    limit = settings.SWEEP_MAX_VARIANTS
    if isinstance(given, dict):
        return range_axis(path, given, param, problems)
    if not isinstance(given, list) or not given:
        problems[path] = 'must be a non-empty list of values, or {"from", "to", "step"}'
        return None
    if len(given) > limit:
        problems[path] = f"has {len(given):,} values; the most is {limit:,} (SWEEP_MAX_VARIANTS)"
        return None
    values = []
    for position, item in enumerate(given):
        problem = value_problem(item, param)
        if problem:
            problems[f"{path}[{position}]"] = problem
            return None
        values.append(int(item) if param.kind is int else float(item))
    if len(set(values)) != len(values):
        problems[path] = "gives a value twice"
        return None
    return values


def range_axis(path: str, given: dict, param: strategies.Param, problems: dict[str, str]):
    """{"from", "to", "step"}: from, from + step, ... up to `to` inclusive."""
    unknown = sorted(set(given) - set(RANGE_FIELDS))
    if unknown or any(name not in given for name in RANGE_FIELDS):
        problems[path] = 'a range is {"from", "to", "step"}, all three and nothing else'
        return None
    start, stop, step = (given[name] for name in RANGE_FIELDS)
    for name, number in (("from", start), ("to", stop)):
        problem = value_problem(number, param)
        if problem:
            problems[f"{path}.{name}"] = problem
            return None
    if (
        not is_number(step)
        or not finite(step)
        or step <= 0
        or (param.kind is int and step != int(step))
    ):
        kind = "integer" if param.kind is int else "number"
        problems[f"{path}.step"] = f"must be a positive {kind}"
        return None
    if stop < start:
        problems[f"{path}.to"] = "must not be below from"
        return None
    count = int((stop - start) / step) + 1
    limit = settings.SWEEP_MAX_VARIANTS
    if count > limit:
        problems[path] = f"has {count:,} values; the most is {limit:,} (SWEEP_MAX_VARIANTS)"
        return None
    return range_values(start, stop, step, param.kind)


def finite(value: int | float) -> bool:
    """Not NaN or infinite (an int always is: math.isfinite would overflow on a huge one)."""
    return isinstance(value, int) or math.isfinite(value)


def value_problem(value: Any, param: strategies.Param) -> str:
    """What is wrong with one value for a parameter ('' if nothing)."""
    kind = "an integer" if param.kind is int else "a number"
    if not is_number(value) or not finite(value):
        return f"must be {kind}"
    if param.kind is int and value != int(value):
        return f"must be {kind}"
    if not param.minimum <= value <= param.maximum:
        return f"must be between {param.minimum} and {param.maximum}"
    return ""


def parse_max_variants(value: Any, method: str, problems: dict[str, str]) -> int | None:
    """How many variants `random` draws (required there); elsewhere an optional cap."""
    limit = settings.SWEEP_MAX_VARIANTS
    if value is _MISSING:
        if method == "random":
            problems["max_variants"] = "required with method random"
        return None
    if not is_integer(value) or not 1 <= value <= limit:
        problems["max_variants"] = f"must be an integer from 1 to {limit:,} (SWEEP_MAX_VARIANTS)"
        return None
    return value


def check_size(axes: Axes, method: str, max_variants: int | None, problems: dict[str, str]):
    """A grid or walk-forward sweep computes every point: at most SWEEP_MAX_VARIANTS of
    them, and at most max_variants when given (a random one draws max_variants)."""
    size = grid_size(axes)
    limit = settings.SWEEP_MAX_VARIANTS
    if method == "random":
        return
    if size > limit:
        problems["grid"] = (
            f"has {size:,} variants; the most is {limit:,} (SWEEP_MAX_VARIANTS): "
            'narrow it, or use "method": "random" with max_variants'
        )
    elif max_variants is not None and size > max_variants:
        problems["grid"] = f"has {size:,} variants, more than max_variants ({max_variants:,})"


def parse_windows(data: dict, method: str, problems: dict[str, str]) -> dict:
    """walk_forward's train, test and step lengths: bars (an integer) or a duration
    ("30d", "12h", "90m", "4w"); step defaults to test. Other methods take none."""
    given = [name for name in WINDOW_FIELDS if name in data]
    if method != "walk_forward":
        for name in given:
            problems[name] = 'only with "method": "walk_forward"'
        return {}
    windows = {}
    for name in WINDOW_FIELDS:
        value = data.get(name, _MISSING)
        if value is _MISSING:
            if name != "step":
                problems[name] = "required with method walk_forward"
            continue
        length = window_length(value)
        if length is None:
            units = ", ".join(DURATION_UNITS)
            problems[name] = f'must be a number of bars or a duration like "30d" ({units})'
        else:
            windows[name] = length
    windows.setdefault("step", windows.get("test"))
    if windows.get("step") is None:
        windows.pop("step", None)
    return windows


def window_length(value: Any) -> dict[str, int] | None:
    """{"bars": n} for an integer, {"seconds": s} for a duration; None if neither."""
    if is_integer(value) and 1 <= value <= 10**9:
        return {"bars": value}
    if isinstance(value, str):
        match = DURATION.fullmatch(value)
        if match and match.group(2) in DURATION_UNITS:
            return {"seconds": int(match.group(1)) * DURATION_UNITS[match.group(2)]}
    return None


@dataclass(frozen=True, slots=True)
class ResultsQuery:
    """A valid GET /sweeps/<id>/results query."""

    order: str = "variant"
    limit: int = 50
    offset: int = 0
    format: str = "json"


def parse_results_query(query: Mapping[str, list[str]]) -> ResultsQuery:
    """?order=[-]<metric or variant>&limit=&offset=&format=json|csv."""
    problems: dict[str, str] = {}
    values = single_values(query, frozenset({"order", "limit", "offset", "format"}), problems)
    order = values.get("order", "variant")
    if order.removeprefix("-") not in RESULT_ORDERS:
        problems["order"] = "must be variant or a metric, with - for descending"
    fmt = values.get("format", "json")
    if fmt not in ("json", "csv"):
        problems["format"] = "must be json or csv"
    limit, offset = paging(values, problems)
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return ResultsQuery(order, limit, offset, fmt)


@dataclass(frozen=True, slots=True)
class HeatmapQuery:
    """A valid GET /sweeps/<id>/heatmap query."""

    x: str
    y: str
    metric: str = "sharpe"
    agg: str = "max"


def parse_heatmap_query(query: Mapping[str, list[str]], axes: Axes) -> HeatmapQuery:
    """?x=<param>&y=<param>&metric=<metric>&agg=max|min|mean|median: x and y must be two
    different axes of the sweep's grid."""
    problems: dict[str, str] = {}
    values = single_values(query, frozenset({"x", "y", "metric", "agg"}), problems)
    names = ", ".join(axes) or "none"
    for name in ("x", "y"):
        if name not in values:
            problems.setdefault(name, f"required: a parameter of the grid ({names})")
        elif values[name] not in axes:
            problems[name] = f"must be a parameter of the grid ({names})"
    if "x" not in problems and "y" not in problems and values["x"] == values["y"]:
        problems["y"] = "must differ from x"
    metric = values.get("metric", "sharpe")
    if metric not in FIELDS:
        problems["metric"] = "must be a metric"
    agg = values.get("agg", "max")
    if agg not in AGGREGATES:
        problems["agg"] = f"must be one of: {', '.join(AGGREGATES)}"
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return HeatmapQuery(values["x"], values["y"], metric, agg)


def parse_promote_body(body: bytes) -> dict:
    """POST /sweeps/<id>/promote: {"params": {...}} (the variant's parameters)."""
    data = parse_json_object(body)
    problems = {name: "unknown field" for name in sorted(set(data) - {"params"})}
    params = data.get("params", _MISSING)
    if params is _MISSING:
        problems["params"] = "required: the variant's parameters"
    elif not isinstance(params, dict):
        problems["params"] = "must be a JSON object"
    else:
        problems.update(non_finite_numbers(params, "params"))
    if problems:
        raise ValidationError("invalid request body", problems)
    return params
