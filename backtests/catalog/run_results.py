"""A finished run's results as data: GET /backtests/<id>/trades and /equity, JSON or CSV.

Read from the run's artifacts (fills.parquet, equity.parquet) in a worker thread; trades
are made from the fills by the engine's own rule (engine/trades.py).
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from backtests.catalog import access
from backtests.catalog.rest import api_view, error_response, forbidden, json_response
from backtests.catalog.validation import ValidationError, decimal, parse_results_query
from backtests.engine import artifacts
from backtests.engine.simulation import STARTING_CAPITAL
from backtests.engine.trades import Trade, trades_of
from backtests.errors import ErrorCode
from backtests.models import Run
from backtests.playback.frames import iso
from backtests.playback.run_data import run_bars_path

TRADE_FIELDS = (
    "side",
    "entry_ts",
    "exit_ts",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "return",
    "fees",
    "duration_s",
)
EQUITY_FIELDS = ("ts", "equity", "position", "drawdown")
# The equity of holding the instrument from the first bar's close, with the run's capital.
BENCHMARK = "benchmark"


@dataclass(frozen=True)
class Artifacts:
    """Where a DONE run's files are."""

    run_id: str
    fills: Path
    equity: Path
    bars: Path | None = None


class NotFinished(Exception):
    """The run has no results yet (or will not have any)."""


class NotYours(Exception):
    """The run is another user's."""


def artifacts_of(run_id: str, user: access.User) -> Artifacts | None:
    """The run's files; None if there is no such run; NotYours if the user may not read
    it; NotFinished unless it is DONE."""
    row = (
        Run.objects.filter(pk=run_id)
        .values_list(
            "status", "fills_path", "equity_path", "owner_id", "bars_sha256", "dataset__bars_path"
        )
        .first()
    )
    if row is None:
        return None
    status, fills, equity, owner_id, bars_sha256, bars_path = row
    if not access.may_read_run(user, owner_id):
        raise NotYours(run_id)
    if status != Run.Status.DONE:
        raise NotFinished(status)
    base = Path(settings.ARTIFACTS_DIR)
    return Artifacts(run_id, base / fills, base / equity, run_bars_path(bars_sha256, bars_path))


def trade_rows(files: Artifacts) -> list[dict]:
    """Every trade of the run, as the API gives them (blocking: run in a thread)."""
    fills = artifacts.read(files.run_id, files.fills, ["ts", "side", "qty", "price", "fee"])
    ts = fills.column("ts").cast("int64").to_numpy()
    side = np.where(np.array(fills.column("side").to_pylist()) == "buy", 1, -1)
    columns = [fills.column(name).to_numpy() for name in ("qty", "price", "fee")]
    return [trade_row(t) for t in trades_of(ts, side, *columns)]


def trade_row(trade: Trade) -> dict:
    """A trade as an item of GET /backtests/<id>/trades (an open one has no exit)."""
    closed = trade.closed
    return {
        "side": "long" if trade.side > 0 else "short",
        "entry_ts": iso(trade.entry_bar),
        "exit_ts": iso(trade.exit_bar) if closed else None,
        "qty": trade.qty,
        "entry_price": trade.entry_price,
        "exit_price": trade.exit_price if closed else None,
        "pnl": trade.pnl if closed else None,
        "return": trade.ret if closed else None,
        "fees": trade.fees,
        "duration_s": (trade.exit_bar - trade.entry_bar) // 10**9 if closed else None,
    }


def equity_columns(files: Artifacts, most: int | None = None) -> dict[str, list]:
    """The equity curve by column (blocking: run in a thread); with `most`, at most that
    many points: the last bar of each group of equal bar counts, with the group's deepest
    drawdown (so that a chart of a year of minutes misses no trough)."""
    table = artifacts.read(files.run_id, files.equity, list(EQUITY_FIELDS))
    ts = table.column("ts").cast("int64").to_numpy()
    arrays = {name: table.column(name).to_numpy() for name in EQUITY_FIELDS[1:]}
    arrays[BENCHMARK] = benchmark(files, len(ts))
    size = 1 if most is None else max(1, -(-len(ts) // most))
    if size > 1:
        starts = np.arange(0, len(ts), size)
        lasts = np.minimum(starts + size, len(ts)) - 1
        drawdown = np.minimum.reduceat(arrays["drawdown"], starts)
        ts = ts[lasts]
        arrays = {name: values[lasts] for name, values in arrays.items()}
        arrays["drawdown"] = drawdown
    columns = {name: values.tolist() for name, values in arrays.items()}
    columns[BENCHMARK] = [None if value != value else value for value in columns[BENCHMARK]]
    return {"ts": [iso(t) for t in ts.tolist()], **columns, "bars_per_point": size}


def benchmark(files: Artifacts, bars: int) -> np.ndarray:
    """Buy and hold: STARTING_CAPITAL in the instrument at the first bar's close, at each
    bar's close; NaN (null in JSON) when the bars cannot be read or are not the run's."""
    try:
        close = pq.read_table(files.bars, columns=["close"]).column("close").to_numpy()
    except (OSError, pa.ArrowException, KeyError, TypeError):
        return np.full(bars, np.nan)
    if len(close) != bars or not close[0] > 0:
        return np.full(bars, np.nan)
    return STARTING_CAPITAL * close / close[0]


def csv_response(rows: list[list], header: tuple[str, ...], name: str) -> HttpResponse:
    """Rows as a CSV download."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    response = HttpResponse(text.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


async def files_or_error(request: HttpRequest, run_id: str) -> Artifacts | HttpResponse:
    """The run's files, or the error response that says why there are none."""
    try:
        files = await sync_to_async(artifacts_of)(run_id, request.user)
    except NotYours:
        return forbidden(f"run {run_id} is another user's")
    except NotFinished as not_done:
        status = str(not_done)
        return error_response(
            ErrorCode.CONFLICT,
            f"run {run_id} is {status}: its results exist once it is DONE",
            {"status": status},
        )
    if files is None:
        return error_response(ErrorCode.RUN_NOT_FOUND, f"no run {run_id}")
    return files


@api_view("GET")
async def trades(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET /backtests/<id>/trades?limit=&offset=&format=: the run's trades, in order."""
    query = parse_results_query(dict(request.GET.lists()), paged=True)
    files = await files_or_error(request, run_id)
    if isinstance(files, HttpResponse):
        return files
    try:
        rows = await sync_to_async(trade_rows)(files)
    except artifacts.ArtifactUnreadable as unreadable:
        return error_response(ErrorCode.ARTIFACTS_MISSING, str(unreadable))
    if query.format == "csv":
        return csv_response(
            [[row[f] for f in TRADE_FIELDS] for row in rows], TRADE_FIELDS, f"{run_id}-trades"
        )
    page = rows[query.offset : query.offset + query.limit]
    return json_response(
        {"items": page, "total": len(rows), "limit": query.limit, "offset": query.offset}
    )


@api_view("GET")
async def equity(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET /backtests/<id>/equity?format=json|csv&max=: ts, equity, position, drawdown and
    the buy-and-hold benchmark a bar (or a point of `max`, for a chart)."""
    raw = dict(request.GET.lists())
    most = parse_max(raw.pop("max", None))
    query = parse_results_query(raw, paged=False)
    files = await files_or_error(request, run_id)
    if isinstance(files, HttpResponse):
        return files
    try:
        columns = await sync_to_async(equity_columns)(files, most)
    except artifacts.ArtifactUnreadable as unreadable:
        return error_response(ErrorCode.ARTIFACTS_MISSING, str(unreadable))
    size = columns.pop("bars_per_point")
    if query.format == "csv":
        rows = [list(values) for values in zip(*columns.values(), strict=True)]
        return csv_response(rows, (*EQUITY_FIELDS, BENCHMARK), f"{run_id}-equity")
    bars = len(columns["ts"]) if size == 1 else await sync_to_async(bar_count)(files)
    return json_response({"bars": bars, "bars_per_point": size, **columns})


MAX_POINTS = 10_000


def parse_max(values: list[str] | None) -> int | None:
    """?max=: at most this many points (1 to MAX_POINTS), or None for every bar."""
    if values is None:
        return None
    number = decimal(values[0]) if len(values) == 1 else None
    if number is None or not 1 <= number <= MAX_POINTS:
        raise ValidationError(
            "invalid query parameters", {"max": f"must be from 1 to {MAX_POINTS}, once"}
        )
    return number


def bar_count(files: Artifacts) -> int:
    """How many bars the run's equity has (its Parquet metadata: no data read)."""
    return pq.ParquetFile(files.equity).metadata.num_rows
