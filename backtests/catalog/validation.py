"""Validation of the REST API's input: the create body, the list query, the idempotency key.

Plain functions over plain data, apart from the views; each raises `ValidationError`
with `details` naming every offending field (docs/api/openapi.yaml).
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from backtests.engine import strategies
from backtests.engine.intervals import INTERVALS
from backtests.engine.simulation import Costs
from backtests.models import Run

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
STRATEGY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.^_-]{0,31}")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII

MAX_SEED = 2**63 - 1
MAX_SPEED = 2**31 - 1
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
ORDERS = ("-created_at", "created_at")

CREATE_FIELDS = frozenset(
    {
        "dataset_id",
        "symbol",
        "from",
        "to",
        "strategy_id",
        "params",
        "seed",
        "slippage_fees",
        "speed",
    }
)
SLIPPAGE_FIELDS = ("k_spread", "fees_bps")
QUERY_FIELDS = frozenset(
    {"symbol", "from", "to", "strategy_id", "status", "limit", "offset", "order"}
)

DATASET_QUERY_FIELDS = frozenset({"symbol", "interval", "limit", "offset"})
UPLOAD_FIELDS = frozenset({"dataset_id", "symbol", "tz", "interval", "public"})
# Request content types of a bars upload, and the file format each one is.
UPLOAD_TYPES = {
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

# A number in a URL or a header: ASCII digits only, at most 18 of them. (str.isdigit() and
# int() also take '²' and '٣', and int() refuses 5,000 digits with a ValueError.)
DECIMAL = re.compile(r"[0-9]{1,18}")

_MISSING = object()


class ValidationError(Exception):
    """Input the API refuses; `details` maps each offending field to what is wrong."""

    def __init__(self, message: str, details: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A valid POST /backtests body. Exactly one of dataset_id or symbol/from/to is set."""

    strategy_id: str
    params: dict[str, Any]
    seed: int
    slippage_fees: dict[str, int | float]
    speed: int | None  # None: the dataset's own pace (a whole dataset in about a minute)
    dataset_id: str | None = None
    symbol: str | None = None
    from_date: date | None = None
    to_date: date | None = None


@dataclass(frozen=True, slots=True)
class RunQuery:
    """A valid GET /backtests query."""

    symbol: str | None = None
    from_date: date | None = None
    to_date: date | None = None
    strategy_id: str | None = None
    status: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    order: str = "-created_at"


class DuplicateKey(ValueError):
    """An object in the body names a key twice (which JSON parsers resolve differently)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key[:100]


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object hook: the object, refusing a key given twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def parse_json_body(body: bytes) -> Any:
    """Decode a request body as JSON; NaN and Infinity decode to floats, checked later."""
    if not body:
        raise ValidationError("request body is empty", {"body": "expected a JSON object"})
    try:
        return json.loads(body, parse_constant=float, object_pairs_hook=unique_keys)
    except DuplicateKey as duplicate:
        raise ValidationError(
            "request body is not valid JSON",
            {"body": f"the key {duplicate.key!r} is given twice"},
        ) from None
    except RecursionError:
        raise ValidationError(
            "request body is not valid JSON", {"body": "nested too deeply"}
        ) from None
    except ValueError as exc:  # JSONDecodeError, bad encodings, over-long integers
        raise ValidationError("request body is not valid JSON", {"body": str(exc)}) from None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    data = parse_json_body(body)
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object", {"body": "expected an object"})
    return data


def parse_run_request(body: bytes) -> RunRequest:
    """Validate a POST /backtests body."""
    data = parse_json_object(body)
    problems: dict[str, str] = {}
    for name in sorted(set(data) - CREATE_FIELDS):
        problems[name] = "unknown field"

    source = dataset_source(data, problems)
    strategy_id = data.get("strategy_id", _MISSING)
    if strategy_id is _MISSING:
        problems["strategy_id"] = "required"
    elif not isinstance(strategy_id, str) or not STRATEGY_PATTERN.fullmatch(strategy_id):
        problems["strategy_id"] = (
            "must be 1-100 characters: letters, digits, _ . - (a letter or digit first)"
        )
    params = data.get("params", _MISSING)
    if params is _MISSING:
        problems["params"] = "required"
    elif not isinstance(params, dict):
        problems["params"] = "must be a JSON object"
    else:
        problems.update(non_finite_numbers(params, "params"))
    if not any(name == "strategy_id" or name.startswith("params") for name in problems):
        params = strategy_params(strategy_id, params, problems)
    seed = data.get("seed", _MISSING)
    if seed is _MISSING:
        problems["seed"] = "required"
    elif not is_integer(seed) or not 0 <= seed <= MAX_SEED:
        problems["seed"] = f"must be an integer from 0 to {MAX_SEED}"
    slippage_fees = parse_slippage_fees(data.get("slippage_fees", _MISSING), problems)
    speed = data.get("speed", _MISSING)
    if speed is _MISSING:
        speed = None  # the dataset's own pace, once it is known (queries.default_speed)
    elif not is_integer(speed) or not 0 < speed <= MAX_SPEED:
        problems["speed"] = f"must be an integer from 1 to {MAX_SPEED}"

    if problems:
        raise ValidationError("invalid request body", problems)
    return RunRequest(
        strategy_id=strategy_id,
        params=params,
        seed=seed,
        slippage_fees=slippage_fees,
        speed=speed,
        **source,
    )


def strategy_params(strategy_id: str, params: dict, problems: dict[str, str]) -> dict:
    """The params checked against the strategy's schema, defaults filled in.

    Stored and hashed resolved, so that a run asked for with and without its defaults
    spelled out is one run.
    """
    try:
        strategy = strategies.get(strategy_id)
    except strategies.UnknownStrategy:
        problems["strategy_id"] = f"unknown strategy; known: {', '.join(strategies.REGISTRY)}"
        return params
    try:
        return strategies.resolve_params(strategy, params)
    except strategies.ParamsError as exc:
        problems.update(exc.problems)
        return params


def dataset_source(data: dict[str, Any], problems: dict[str, str]) -> dict[str, Any]:
    """Where the run's data comes from: a dataset_id, or a symbol with from and to dates."""
    has_id = "dataset_id" in data
    range_fields = [name for name in ("symbol", "from", "to") if name in data]
    if has_id and range_fields:
        problems["dataset_id"] = "give either dataset_id or symbol/from/to, not both"
        return {}
    if has_id:
        dataset_id = data["dataset_id"]
        if not isinstance(dataset_id, str) or not ID_PATTERN.fullmatch(dataset_id):
            problems["dataset_id"] = "must be 1-64 characters: letters, digits, _ or -"
            return {}
        return {"dataset_id": dataset_id}
    if not range_fields:
        problems["dataset_id"] = "required (or give symbol, from and to)"
        return {}
    symbol = parse_symbol(data.get("symbol", _MISSING), problems)
    from_date = parse_date(data.get("from", _MISSING), "from", problems)
    to_date = parse_date(data.get("to", _MISSING), "to", problems)
    if from_date and to_date and from_date > to_date:
        problems["to"] = "must not be before from"
    return {"symbol": symbol, "from_date": from_date, "to_date": to_date}


def parse_symbol(value: Any, problems: dict[str, str]) -> str | None:
    """A ticker symbol, upper-cased: 'aapl' and 'AAPL' name the same one."""
    if value is _MISSING:
        problems["symbol"] = "required"
        return None
    if isinstance(value, str) and SYMBOL_PATTERN.fullmatch(value.upper()):
        return value.upper()
    problems["symbol"] = "must be a ticker symbol of 1-32 characters, like AAPL"
    return None


def parse_date(value: Any, name: str, problems: dict[str, str]) -> date | None:
    """An ISO date, YYYY-MM-DD."""
    if value is _MISSING:
        problems[name] = "required"
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            problems[name] = f"not a valid date: {exc}"
            return None
    problems[name] = "must be a date, YYYY-MM-DD"
    return None


def parse_slippage_fees(value: Any, problems: dict[str, str]) -> dict[str, int | float]:
    """{"k_spread": 0 to 10, "fees_bps": 0 to under 10,000}, nothing else (the engine's
    bounds, simulation.Costs)."""
    if value is _MISSING:
        problems["slippage_fees"] = "required"
        return {}
    if not isinstance(value, dict):
        problems["slippage_fees"] = "must be an object with k_spread and fees_bps"
        return {}
    for name in sorted(set(value) - set(SLIPPAGE_FIELDS)):
        problems[f"slippage_fees.{name}"] = "unknown field"
    for name in SLIPPAGE_FIELDS:
        number = value.get(name, _MISSING)
        if number is _MISSING:
            problems[f"slippage_fees.{name}"] = "required"
        elif not is_number(number):
            problems[f"slippage_fees.{name}"] = "must be a number"
        elif not math.isfinite(number):
            problems[f"slippage_fees.{name}"] = "must be finite"
        elif number < 0:
            problems[f"slippage_fees.{name}"] = "must not be negative"
    if not any(name.startswith("slippage_fees") for name in problems):
        bounds = Costs(float(value["k_spread"]), float(value["fees_bps"])).problems()
        problems.update({f"slippage_fees.{name}": rule for name, rule in bounds.items()})
    return value


def non_finite_numbers(value: Any, path: str) -> dict[str, str]:
    """Every NaN or infinite number inside a JSON value, by dotted path."""
    if isinstance(value, float) and not math.isfinite(value):
        return {path: "must be finite"}
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found.update(non_finite_numbers(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(non_finite_numbers(item, f"{path}[{index}]"))
    return found


def is_integer(value: Any) -> bool:
    """An int that is not a bool (JSON true/false are not numbers)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_run_query(query: Mapping[str, list[str]]) -> RunQuery:
    """Validate GET /backtests query parameters (each given at most once)."""
    problems: dict[str, str] = {}
    values = single_values(query, QUERY_FIELDS, problems)
    fields: dict[str, Any] = {}
    if "symbol" in values:
        fields["symbol"] = parse_symbol(values["symbol"], problems)
    for name, field in (("from", "from_date"), ("to", "to_date")):
        if name in values:
            fields[field] = parse_date(values[name], name, problems)
    if "strategy_id" in values:
        if STRATEGY_PATTERN.fullmatch(values["strategy_id"]):
            fields["strategy_id"] = values["strategy_id"]
        else:
            problems["strategy_id"] = "must be a strategy id"
    if "status" in values:
        if values["status"] in Run.Status.values:
            fields["status"] = values["status"]
        else:
            problems["status"] = f"must be one of: {', '.join(Run.Status.values)}"
    fields["limit"], fields["offset"] = paging(values, problems)
    if "order" in values:
        if values["order"] in ORDERS:
            fields["order"] = values["order"]
        else:
            problems["order"] = "must be created_at or -created_at"
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return RunQuery(**fields)


@dataclass(frozen=True, slots=True)
class DatasetQuery:
    """A valid GET /datasets query."""

    symbol: str | None = None
    interval: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True, slots=True)
class DatasetUpload:
    """A POST /datasets request's query and format (its arguments are checked by the
    import itself, catalog/bars_import.py, the same way as import_bars')."""

    dataset_id: str
    symbol: str
    tz: str
    interval: str | None
    fmt: str
    public: bool = False


def single_values(
    query: Mapping[str, list[str]], known: frozenset[str], problems: dict[str, str]
) -> dict[str, str]:
    """Each known query parameter's one value; unknown and repeated ones are problems."""
    values: dict[str, str] = {}
    for name, given in query.items():
        if name not in known:
            problems[name] = "unknown query parameter"
        elif len(given) != 1:
            problems[name] = "give at most once"
        else:
            values[name] = given[0]
    return values


def parse_interval(value: str, problems: dict[str, str]) -> str | None:
    """A bar interval name: 1m, 5m, ..., 1mo."""
    if value in INTERVALS:
        return value
    problems["interval"] = f"must be one of {', '.join(INTERVALS)}"
    return None


def parse_dataset_query(query: Mapping[str, list[str]]) -> DatasetQuery:
    """Validate GET /datasets query parameters."""
    problems: dict[str, str] = {}
    values = single_values(query, DATASET_QUERY_FIELDS, problems)
    fields: dict[str, Any] = {}
    if "symbol" in values:
        fields["symbol"] = parse_symbol(values["symbol"], problems)
    if "interval" in values:
        fields["interval"] = parse_interval(values["interval"], problems)
    fields["limit"], fields["offset"] = paging(values, problems)
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return DatasetQuery(**fields)


def parse_dataset_upload(query: Mapping[str, list[str]], content_type: str) -> DatasetUpload:
    """Validate POST /datasets: the query names the dataset, the content type the format."""
    problems: dict[str, str] = {}
    values = single_values(query, UPLOAD_FIELDS, problems)
    for name in ("dataset_id", "symbol"):
        if name not in values and name not in problems:
            problems[name] = "required"
    interval = values.get("interval")
    if interval is not None:
        parse_interval(interval, problems)
    public = values.get("public", "false")
    if public not in ("true", "false"):
        problems["public"] = "must be true or false"
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return DatasetUpload(
        dataset_id=values["dataset_id"],
        symbol=values["symbol"],
        tz=values.get("tz", "UTC"),
        interval=interval,
        fmt=UPLOAD_TYPES.get(content_type, ""),
        public=public == "true",
    )


RESULTS_FORMATS = ("json", "csv")


@dataclass(frozen=True, slots=True)
class ResultsQuery:
    """A valid query of a run's trades or equity."""

    format: str = "json"
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def parse_results_query(query: Mapping[str, list[str]], paged: bool) -> ResultsQuery:
    """Validate ?format= (json, csv) and, for a paged list, ?limit=&offset=."""
    problems: dict[str, str] = {}
    known = frozenset({"format", "limit", "offset"} if paged else {"format"})
    values = single_values(query, known, problems)
    fmt = values.get("format", "json")
    if fmt not in RESULTS_FORMATS:
        problems["format"] = "must be json or csv"
    limit, offset = paging(values, problems)
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return ResultsQuery(fmt, limit, offset)


def paging(values: Mapping[str, str], problems: dict[str, str]) -> tuple[int, int]:
    """A list's `limit` (1 to MAX_LIMIT, DEFAULT_LIMIT when absent) and `offset` (0)."""
    limit = parse_bounded_int(values.get("limit"), "limit", 1, MAX_LIMIT, problems)
    offset = parse_bounded_int(values.get("offset"), "offset", 0, None, problems)
    return DEFAULT_LIMIT if limit is None else limit, 0 if offset is None else offset


def parse_bounded_int(
    raw: str | None, name: str, low: int, high: int | None, problems: dict[str, str]
) -> int | None:
    """A decimal integer query value within [low, high]; None when absent."""
    if raw is None:
        return None
    bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
    value = decimal(raw)
    if value is not None and value >= low and (high is None or value <= high):
        return value
    problems[name] = f"must be an integer {bound}"
    return None


def decimal(raw: str) -> int | None:
    """A non-negative decimal integer of ASCII digits (at most 18), or None."""
    return int(raw) if DECIMAL.fullmatch(raw) else None


def parse_idempotency_key(headers: Mapping[str, str]) -> str | None:
    """The Idempotency-Key header (or its alias X-Idempotency-Key), if any."""
    keys = [headers[name] for name in ("Idempotency-Key", "X-Idempotency-Key") if name in headers]
    if not keys:
        return None
    if len(keys) == 2 and keys[0] != keys[1]:
        raise ValidationError(
            "conflicting idempotency keys",
            {"Idempotency-Key": "differs from X-Idempotency-Key; send one"},
        )
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(keys[0]):
        raise ValidationError(
            "invalid idempotency key",
            {"Idempotency-Key": "must be 1-255 visible ASCII characters"},
        )
    return keys[0]
