"""The catalog's REST API: /backtests (list, create), /backtests/<id> (get), /strategies."""

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from accounts.quotas import OverQuota
from backtests.catalog import access, queries
from backtests.catalog.rest import (
    api_view,
    client_address,
    error_response,
    forbidden,
    json_response,
    rate_limited,
)
from backtests.catalog.serializers import run_detail, run_summary
from backtests.catalog.validation import parse_idempotency_key, parse_run_query, parse_run_request
from backtests.engine import strategies as registry
from backtests.errors import ErrorCode
from backtests.jobs import lifecycle
from project.middleware import is_api_path


@api_view("GET", "POST")
async def runs(request: HttpRequest) -> HttpResponse:
    """GET lists runs, newest first by default; POST creates one."""
    if request.method == "POST":
        return await create_run(request)
    query = parse_run_query(dict(request.GET.lists()))
    page = await queries.list_runs(query, request.user)
    return json_response(
        {
            "items": [run_summary(row, page.datasets[row["dataset_id"]]) for row in page.rows],
            "total": page.total,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


async def create_run(request: HttpRequest) -> HttpResponse:
    """POST /backtests: 202 for a new run, 200 EXISTS for a repeat, 409 for a reused key."""
    key = parse_idempotency_key(request.headers)
    run_request = parse_run_request(request.body)
    creator = queries.Creator(access.owner_of(request.user), client_address(request), limited=True)
    try:
        created = await queries.create_run(run_request, key, creator)
    except queries.DATASET_REFUSALS as refused:
        return dataset_refusal(refused, "runs")
    except OverQuota as over:
        return rate_limited(over)
    except queries.IdempotencyConflict as conflict:
        return error_response(
            ErrorCode.IDP_CONFLICT,
            "this Idempotency-Key was used with a different request body",
            {"run_id": conflict.run_id},
        )
    if created.new:
        return json_response({"run_id": created.run_id, "status": "QUEUED"}, status=202)
    return json_response({"run_id": created.run_id, "status": "EXISTS"})


def dataset_refusal(refused: Exception, what: str) -> HttpResponse:
    """The answer to a create (of `what`: runs, sweeps) whose dataset cannot be used: 404
    for none, 403 for another user's, 409 for one that is not READY."""
    if isinstance(refused, queries.DatasetForbidden):
        return forbidden(
            f"{refused}: {what} need a dataset of yours, the operator's or a public one"
        )
    if isinstance(refused, queries.DatasetNotReady):
        return error_response(
            ErrorCode.CONFLICT,
            f"{refused}; {what} need a READY dataset",
            {"dataset_id": refused.dataset.status},
        )
    return error_response(ErrorCode.DATASET_NOT_FOUND, str(refused))


@api_view("GET")
async def run(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET /backtests/<id>: the run with its dataset, metrics and artifacts."""
    found = await queries.get_run(run_id)
    if found is None:
        return error_response(ErrorCode.RUN_NOT_FOUND, f"no run {run_id}")
    if not access.may_read_run(request.user, found.owner_id):
        return forbidden(f"run {run_id} is another user's")
    return json_response(run_detail(found))


async def refuse_unreadable(request: HttpRequest, run_id: str) -> HttpResponse | None:
    """404 for no such run, 403 for another user's; None when the user may read it."""
    found, owner_id = await queries.run_owner(run_id)
    if not found:
        return error_response(ErrorCode.RUN_NOT_FOUND, f"no run {run_id}")
    if not access.may_read_run(request.user, owner_id):
        return forbidden(f"run {run_id} is another user's")
    return None


@api_view("POST")
async def cancel_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """POST /backtests/<id>/cancel: QUEUED is cancelled now (200); RUNNING stops at the
    engine's next checkpoint (202); a finished run is 409; another user's run is 403."""
    found, owner_id = await queries.run_owner(run_id)
    if found and not access.may_change_run(request.user, owner_id):
        return forbidden(f"run {run_id} is not yours to cancel")
    outcome = await sync_to_async(lifecycle.cancel)(run_id)
    if not outcome.found:
        return error_response(ErrorCode.RUN_NOT_FOUND, f"no run {run_id}")
    body = {"run_id": run_id, "status": outcome.status, "cancel_requested": True}
    if outcome.moved and outcome.status == "CANCELLED":
        return json_response(body)
    if outcome.status == "RUNNING":  # asked now, or by an earlier cancel: the same answer
        return json_response(body, status=202)
    return error_response(
        ErrorCode.CONFLICT,
        f"run {run_id} is {outcome.status}: only QUEUED and RUNNING runs can be cancelled",
        {"status": outcome.status},
    )


@api_view("GET")
async def strategies(request: HttpRequest) -> HttpResponse:
    """GET /strategies: every strategy with its rule, parameters, defaults and bounds."""
    return json_response({"items": [s.describe() for s in registry.REGISTRY.values()]})


@csrf_exempt
async def not_found(request: HttpRequest, rest: str) -> HttpResponse:
    """Any other path under /backtests/: a JSON 404, never Django's HTML page."""
    return error_response(ErrorCode.NOT_FOUND, f"no API endpoint at {request.path[:200]}")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the JSON envelope on API paths, Django's page elsewhere."""
    if is_api_path(request.path):
        return error_response(ErrorCode.INTERNAL, "internal server error")
    return defaults.server_error(request)
