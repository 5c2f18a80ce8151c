"""The sweeps' REST API: /sweeps (list, create), /sweeps/<id> (get), its results,
heatmap, progress events, cancel and promote (docs/sweeps.md)."""

import asyncio

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts import quotas
from accounts.quotas import OverQuota
from backtests.catalog import access
from backtests.catalog import queries as catalog
from backtests.catalog.rest import (
    api_view,
    client_address,
    client_key,
    error_response,
    forbidden,
    json_response,
    rate_limited,
)
from backtests.catalog.run_results import csv_response
from backtests.catalog.validation import (
    ValidationError,
    paging,
    parse_idempotency_key,
    single_values,
)
from backtests.catalog.views import dataset_refusal
from backtests.engine import strategies
from backtests.errors import ErrorCode
from backtests.models import Sweep
from backtests.playback.sse import EventStream
from backtests.sweeps import lifecycle, queries
from backtests.sweeps.serializers import (
    csv_header,
    csv_row,
    result_item,
    sweep_detail,
    sweep_summary,
)
from backtests.sweeps.validation import (
    parse_heatmap_query,
    parse_promote_body,
    parse_results_query,
    parse_sweep_request,
)

# How often an events stream reads the sweep's row, and sends a heartbeat without news.
EVENTS_POLL_SECONDS = 0.5
EVENTS_HEARTBEAT_SECONDS = 15.0


@api_view("GET", "POST")
async def sweeps(request: HttpRequest) -> HttpResponse:
    """GET lists the user's sweeps, newest first; POST creates one."""
    if request.method == "POST":
        return await create_sweep(request)
    problems: dict[str, str] = {}
    values = single_values(dict(request.GET.lists()), frozenset({"limit", "offset"}), problems)
    limit, offset = paging(values, problems)
    if problems:
        raise ValidationError("invalid query parameters", problems)
    rows, total = await queries.list_sweeps(request.user, limit, offset)
    return json_response(
        {
            "items": [sweep_summary(row) for row in rows],
            "total": total,
            "limit": limit,
            "offset": offset,
        }
    )


async def create_sweep(request: HttpRequest) -> HttpResponse:
    """POST /sweeps: 202 for a new sweep, 200 EXISTS for a repeat, 409 for a reused key."""
    key = parse_idempotency_key(request.headers)
    # Validating a grid of up to SWEEP_MAX_VARIANTS values is work: off the event loop.
    sweep_request = await sync_to_async(parse_sweep_request)(request.body)
    creator = catalog.Creator(access.owner_of(request.user), client_address(request), limited=True)
    try:
        created, total = await queries.create_sweep(sweep_request, key, creator)
    except catalog.DATASET_REFUSALS as refused:
        return dataset_refusal(refused, "sweeps")
    except OverQuota as over:
        return rate_limited(over)
    except queries.NothingToCompute as nothing:
        return error_response(ErrorCode.VALIDATION, str(nothing), {"grid": str(nothing)})
    except queries.BadWindows as bad:
        return error_response(ErrorCode.VALIDATION, str(bad), {"train": str(bad)})
    except catalog.IdempotencyConflict as conflict:
        return error_response(
            ErrorCode.IDP_CONFLICT,
            "this Idempotency-Key was used with a different request body",
            {"sweep_id": conflict.run_id},
        )
    status = "QUEUED" if created.new else "EXISTS"
    body = {"sweep_id": created.run_id, "status": status, "total": total}
    return json_response(body, status=202 if created.new else 200)


async def readable(request: HttpRequest, sweep_id: str) -> Sweep | HttpResponse:
    """The sweep, or the 404 or 403 that says why the user may not read it."""
    row = await queries.get_sweep(sweep_id)
    if row is None:
        return error_response(ErrorCode.SWEEP_NOT_FOUND, f"no sweep {sweep_id}")
    if not access.may_read_run(request.user, row.owner_id):
        return forbidden(f"sweep {sweep_id} is another user's")
    return row


@api_view("GET")
async def sweep_view(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """GET /sweeps/<id>: its inputs, status, progress (done of total), best and times.

    A browser's navigation (Accept preferring text/html over JSON) is sent to the sweep's
    page instead; API clients (JSON, or */*) get the JSON."""
    if request.get_preferred_type(["application/json", "text/html"]) == "text/html":
        return redirect("sweep-page", sweep_id=sweep_id)
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    return json_response(sweep_detail(row))


@api_view("GET")
async def results(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """GET /sweeps/<id>/results?order=-sharpe&limit=&offset=&format=json|csv."""
    query = parse_results_query(dict(request.GET.lists()))
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    page = await queries.results(sweep_id, query)
    if query.format == "csv":
        params = param_names(row)
        return csv_response(
            [csv_row(r, params) for r in page.rows], csv_header(params), f"{sweep_id}-results"
        )
    return json_response(
        {
            "items": [result_item(r) for r in page.rows],
            "total": page.total,
            "order": query.order,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


def param_names(row: Sweep) -> list[str]:
    """Every parameter of the sweep's strategy (the grid's, if it is not registered now)."""
    try:
        return list(strategies.get(row.strategy_id).params)
    except strategies.UnknownStrategy:
        return list(row.grid)


@api_view("GET")
async def heatmap(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """GET /sweeps/<id>/heatmap?x=&y=&metric=&agg=: {"x", "y", "z"}."""
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    query = parse_heatmap_query(dict(request.GET.lists()), row.grid)
    return json_response(await sync_to_async(queries.heatmap)(row, query))


@api_view("POST")
async def cancel(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """POST /sweeps/<id>/cancel: an active sweep is CANCELLED at once (its running chunks
    stop at their next variant); a finished one is 409."""
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    outcome = await sync_to_async(lifecycle.cancel)(sweep_id)
    if outcome.status == "CANCELLED":  # now, or by an earlier cancel: the same answer
        return json_response({"sweep_id": sweep_id, "status": outcome.status})
    return error_response(
        ErrorCode.CONFLICT,
        f"sweep {sweep_id} is {outcome.status}: only QUEUED and RUNNING sweeps can be cancelled",
        {"status": outcome.status},
    )


@api_view("POST")
async def promote(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """POST /sweeps/<id>/promote {"params"}: a normal run of that variant (202 QUEUED, or
    200 EXISTS for a run with the same inputs), computed with its artifacts, playable."""
    params = parse_promote_body(request.body)
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    creator = catalog.Creator(access.owner_of(request.user), client_address(request), limited=True)
    try:
        created = await sync_to_async(queries.promote)(row, params, creator)
    except strategies.UnknownStrategy:
        return error_response(
            ErrorCode.CONFLICT, f"strategy {row.strategy_id} is no longer registered", {}
        )
    except strategies.ParamsError as exc:
        raise ValidationError("invalid parameters", exc.problems) from None
    except queries.NotAVariant as not_one:
        raise ValidationError(
            "these parameters are not a variant of the sweep", {"params": str(not_one)}
        ) from None
    except OverQuota as over:
        return rate_limited(over)
    body = {"run_id": created.run_id, "status": "QUEUED" if created.new else "EXISTS"}
    return json_response(body, status=202 if created.new else 200)


def progress_of(row: Sweep) -> dict:
    """What an events stream sends: the sweep's status, progress and best so far."""
    return {
        "sweep_id": row.sweep_id,
        "status": row.status,
        "total": row.total,
        "done": row.done,
        "skipped": row.skipped,
        "best": row.best,
        "error": row.error or None,
        "oos_run_id": row.oos_run_id,
    }


async def progress_events(sweep_id: str, first: dict):
    """`event: progress` whenever the sweep's row changes, then `event: end` once it is
    finished; a heartbeat comment when nothing changed for a while."""
    sent, quiet = first, 0.0
    yield f"event: progress\ndata: {orjson.dumps(first).decode()}\n\n"
    while sent["status"] in lifecycle.ACTIVE:
        await asyncio.sleep(EVENTS_POLL_SECONDS)
        row = await queries.get_sweep(sweep_id)
        if row is None:
            break
        now = progress_of(row)
        if now != sent:
            sent, quiet = now, 0.0
            yield f"event: progress\ndata: {orjson.dumps(now).decode()}\n\n"
        else:
            quiet += EVENTS_POLL_SECONDS
            if quiet >= EVENTS_HEARTBEAT_SECONDS:
                quiet = 0.0
                yield ": hb\n\n"
    yield "event: end\ndata: {}\n\n"


@api_view("GET")
async def events(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """GET /sweeps/<id>/events: Server-Sent Events of the sweep's progress."""
    problems: dict[str, str] = {}
    single_values(dict(request.GET.lists()), frozenset(), problems)
    if problems:
        raise ValidationError("invalid query parameters", problems)
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    try:
        slot = quotas.STREAMS.take(
            client_key(request), settings.SSE_MAX_PER_CLIENT, settings.SSE_MAX_CONNECTIONS
        )
    except quotas.OverQuota as over:
        return rate_limited(over)
    response = EventStream(progress_events(sweep_id, progress_of(row)), slot)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
