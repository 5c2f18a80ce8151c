"""A finished run's results as data: GET /backtests/<id>/trades and /equity, JSON or CSV.

Read from the run's artifacts (fills.parquet, equity.parquet) in a worker thread; trades
are made from the fills by the engine's own rule (engine/trades.py).
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from backtests.catalog import access
from backtests.catalog.rest import api_view, error_response, forbidden, json_response
from backtests.catalog.validation import parse_results_query
from backtests.engine import artifacts
from backtests.engine.trades import Trade, trades_of
from backtests.errors import ErrorCode
from backtests.models import Run
from backtests.playback.frames import iso

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


@dataclass(frozen=True)
class Artifacts:
    """Where a DONE run's files are."""

    run_id: str
    fills: Path
    equity: Path


class NotFinished(Exception):
    """The run has no results yet (or will not have any)."""


class NotYours(Exception):
    """The run is another user's."""


def artifacts_of(run_id: str, user: access.User) -> Artifacts | None:
    """The run's files; None if there is no such run; NotYours if the user may not read
    it; NotFinished unless it is DONE."""
    row = (
        Run.objects.filter(pk=run_id)
        .values_list("status", "fills_path", "equity_path", "owner_id")
        .first()
    )
    if row is None:
        return None
    status, fills, equity, owner_id = row
    if not access.may_read_run(user, owner_id):
        raise NotYours(run_id)
    if status != Run.Status.DONE:
        raise NotFinished(status)
    base = Path(settings.ARTIFACTS_DIR)
    return Artifacts(run_id, base / fills, base / equity)


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


def equity_columns(files: Artifacts) -> dict[str, list]:
    """The equity curve by column (blocking: run in a thread)."""
    table = artifacts.read(files.run_id, files.equity, list(EQUITY_FIELDS))
    ts = table.column("ts").cast("int64").to_numpy()
    columns = {name: table.column(name).to_numpy().tolist() for name in EQUITY_FIELDS[1:]}
    return {"ts": [iso(t) for t in ts.tolist()], **columns}


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
    """GET /backtests/<id>/equity?format=json|csv: ts, equity, position, drawdown a bar."""
    query = parse_results_query(dict(request.GET.lists()), paged=False)
    files = await files_or_error(request, run_id)
    if isinstance(files, HttpResponse):
        return files
    try:
        columns = await sync_to_async(equity_columns)(files)
    except artifacts.ArtifactUnreadable as unreadable:
        return error_response(ErrorCode.ARTIFACTS_MISSING, str(unreadable))
    if query.format == "csv":
        rows = [list(values) for values in zip(*columns.values(), strict=True)]
        return csv_response(rows, EQUITY_FIELDS, f"{run_id}-equity")
    return json_response({"bars": len(columns["ts"]), **columns})
