"""The sweeps' pages: the list (/runs/sweeps) and a sweep (/runs/sweeps/<id>) with its
live progress, the heatmap of two chosen parameters, the sortable results, each with a
Promote button, and for walk-forward its windows and out-of-sample run. They read what the
JSON API reads, through the same queries and serializers (backtests/sweeps/)."""

import json
import math
import re
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from accounts.quotas import OverQuota
from backtests.catalog import access
from backtests.catalog import queries as catalog
from backtests.catalog.rest import client_address
from backtests.catalog.validation import ValidationError
from backtests.engine import strategies
from backtests.engine.sweep import METHODS
from backtests.models import Sweep
from backtests.pages import formatting
from backtests.pages.access import page_view
from backtests.pages.views import DEFAULT_COSTS, form_context, number, page_number
from backtests.sweeps import queries
from backtests.sweeps.serializers import result_item, sweep_detail, sweep_summary
from backtests.sweeps.validation import (
    AGGREGATES,
    RESULT_ORDERS,
    ResultsQuery,
    parse_heatmap_query,
    parse_sweep_request,
)

PAGE_SIZE = 25
HEAT_STEPS = 10  # the heatmap's colour classes, heat-0 (lowest) to heat-9
RESULT_METRICS = ("sharpe", "total_return", "max_drawdown", "cagr", "trades", "profit_factor")


def problem(request: HttpRequest, text: str, status: int) -> HttpResponse:
    return render(request, "pages/problem.html", {"problem": text}, status=status)


async def readable(request: HttpRequest, sweep_id: str) -> Sweep | HttpResponse:
    """The sweep, or the page that says why the user may not see it."""
    row = await queries.get_sweep(sweep_id)
    if row is None:
        return problem(request, f"No sweep {sweep_id}.", 404)
    if not access.may_read_run(request.user, row.owner_id):
        return problem(request, f"Sweep {sweep_id} is another user's.", 403)
    return row


@require_safe
@page_view
async def sweep_list(request: HttpRequest) -> HttpResponse:
    """/runs/sweeps: the user's sweeps, newest first, with their progress and best."""
    rows, total = await queries.list_sweeps(request.user, 100, 0)
    items = []
    for row in rows:
        item = sweep_summary(row)
        best = item["best"] or {}
        item["best_text"] = formatting.params_text(best.get("params") or {})
        item["best_figure"] = formatting.figure(
            (best.get("metrics") or {}).get(row.maximize), metric_kind(row.maximize)
        )
        items.append(item)
    return render(request, "pages/sweep_list.html", {"sweeps": items, "total": total})


def metric_kind(name: str) -> str:
    return formatting.METRICS.get(name, (name, "num"))[1]


def heat_classes(z: list[list]) -> list[list[dict]]:
    """Each cell's text and colour class, from the lowest value (heat-0) to the highest."""
    values = [v for row in z for v in row if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    span = high - low

    def cell(value):
        if value is None:
            return {"value": "", "text": "\u2013", "heat": "none"}
        step = 0 if span == 0 else min(HEAT_STEPS - 1, int((value - low) / span * HEAT_STEPS))
        return {"value": repr(value), "text": f"{value:,.3f}", "heat": f"heat-{step}"}

    return [[cell(v) for v in row] for row in z]


def heatmap_context(request: HttpRequest, row: Sweep) -> dict:
    """The heatmap's choices and cells (blocking: in a thread); {} with one axis."""
    axes = list(row.grid)
    if len(axes) < 2:
        return {}
    wanted = {
        "x": [request.GET.get("x") or axes[0]],
        "y": [request.GET.get("y") or axes[1]],
        "metric": [request.GET.get("metric") or row.maximize],
        "agg": [request.GET.get("agg") or "max"],
    }
    try:
        query = parse_heatmap_query(wanted, row.grid)
    except ValidationError as bad:
        return {"axes": axes, "problems": bad.details}
    heat = queries.heatmap(row, query)
    return {
        "axes": axes,
        "query": query,
        "x": heat["x"],
        "rows": list(zip(heat["y"], heat_classes(heat["z"]), strict=True)),
    }


@require_safe
@page_view
async def sweep_page(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """/runs/sweeps/<id>: progress, heatmap, results (sorted, paged, promotable), windows."""
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    detail = sweep_detail(row)
    order = request.GET.get("order", "")
    if order.removeprefix("-") not in RESULT_ORDERS:
        order = f"-{row.maximize}"
    page = page_number(request.GET.get("page"))
    found = await queries.results(sweep_id, ResultsQuery(order, PAGE_SIZE, (page - 1) * PAGE_SIZE))
    heat = await sync_to_async(heatmap_context)(request, row)
    params = list(row.grid)
    results = []
    for result in map(result_item, found.rows):
        metrics = result["metrics"] or {}
        result["cells"] = [result["params"].get(name) for name in params]
        result["figures"] = [
            formatting.figure(metrics.get(name), metric_kind(name)) for name in RESULT_METRICS
        ]
        result["params_json"] = json.dumps(result["params"])
        results.append(result)
    pages = max(1, math.ceil(found.total / PAGE_SIZE))

    def link(**changes) -> str:
        return "?" + urlencode({"order": order, "page": page, **changes})

    def toggle(name: str) -> str:
        return link(order=name if order == f"-{name}" else f"-{name}", page=1)

    best = detail["best"] or {}
    context = {
        "sweep": detail,
        "params": params,
        "grid_text": "; ".join(f"{name} {values}" for name, values in row.grid.items()),
        "best_text": formatting.params_text(best.get("params") or {}),
        "best_figure": formatting.figure(
            (best.get("metrics") or {}).get(row.maximize), metric_kind(row.maximize)
        ),
        "percent": round(100 * row.done / row.total) if row.total else 0,
        "waiting": row.status in ("QUEUED", "RUNNING"),
        "heat": heat,
        "aggregates": AGGREGATES,
        "metrics": list(formatting.METRICS),
        "results": results,
        "result_total": found.total,
        "result_metrics": [
            (name, formatting.METRICS[name][0], toggle(name)) for name in RESULT_METRICS
        ],
        "order": order,
        "page": page,
        "pages": pages,
        "previous": link(page=page - 1) if page > 1 else None,
        "next": link(page=page + 1) if page < pages else None,
        "windows": [window_cells(w) for w in row.windows],
    }
    return render(request, "pages/sweep.html", context)


def window_cells(window: dict) -> dict:
    """A walk-forward window's row: its parts, choice, and figures in and out of sample."""
    train, test = window.get("train_metrics") or {}, window.get("test_metrics") or {}
    return {
        **window,
        "params_text": formatting.params_text(window["params"] or {}) or "\u2013",
        "train_sharpe": formatting.figure(train.get("sharpe"), "num"),
        "test_sharpe": formatting.figure(test.get("sharpe"), "num"),
        "test_return": formatting.figure(test.get("total_return"), "pct"),
    }


@require_POST
@page_view
async def promote(request: HttpRequest, sweep_id: str) -> HttpResponse:
    """POST /runs/sweeps/<id>/promote: the variant as a normal run, then the run's page."""
    row = await readable(request, sweep_id)
    if isinstance(row, HttpResponse):
        return row
    creator = catalog.Creator(access.owner_of(request.user), client_address(request), limited=True)
    try:
        params = json.loads(request.POST.get("params", ""))
        created = await sync_to_async(queries.promote)(row, params, creator)
    except (ValueError, strategies.UnknownStrategy, strategies.ParamsError, queries.NotAVariant):
        return problem(request, "These parameters are not a variant of the sweep.", 422)
    except OverQuota as over:
        return problem(request, str(over), 429)
    return redirect("run-page", run_id=created.run_id)


RANGE_TEXT = re.compile(r"\s*(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s*")
SWEEP_FIELDS = {
    "dataset_id": "dataset_id",
    "strategy_id": "strategy_id",
    "method": "method",
    "max_variants": "max_variants",
    "maximize": "maximize",
    "seed": "seed",
    "slippage_fees.k_spread": "k_spread",
    "slippage_fees.fees_bps": "fees_bps",
    "train": "train",
    "test": "test",
    "step": "step",
}


def values_of(text: str):
    """A parameter's values as the form gives them: "5, 10, 20" (a list) or "30 to 100 step
    10" (a range); None when empty (the parameter keeps its default)."""
    if not text.strip():
        return None
    ranged = RANGE_TEXT.fullmatch(text)
    if ranged:
        start, stop, step = (number(part) for part in ranged.groups())
        return {"from": start, "to": stop, "step": step}
    return [number(part) for part in text.split(",")]


def window_of(text: str):
    """A walk-forward length: bars (a number) or a duration ("30d"), as the API takes it."""
    text = text.strip()
    return int(text) if text.isdecimal() else text


def sweep_body(post, strategy_id: str) -> dict:
    """POST /sweeps' body from the form's fields."""
    strategy = strategies.REGISTRY.get(strategy_id)
    grid = {}
    for name in strategy.params if strategy is not None else ():
        values = values_of(post.get(f"{strategy_id}.{name}", ""))
        if values is not None:
            grid[name] = values
    body = {
        "dataset_id": post.get("dataset_id", ""),
        "strategy_id": strategy_id,
        "grid": grid,
        "method": post.get("method", "grid"),
        "maximize": post.get("maximize", "sharpe"),
        "seed": number(post.get("seed", "0") or "0"),
        "slippage_fees": {
            "k_spread": number(post.get("k_spread", "")),
            "fees_bps": number(post.get("fees_bps", "")),
        },
    }
    if post.get("max_variants", "").strip():
        body["max_variants"] = number(post["max_variants"])
    if body["method"] == "walk_forward":
        for name in ("train", "test", "step"):
            if post.get(name, "").strip():
                body[name] = window_of(post[name])
    return body


def sweep_errors(details: dict, strategy_id: str) -> tuple[dict, list[str]]:
    """The API's 422 details as (errors by form field, errors of the whole form)."""
    by_field, general = {}, []
    for key, message in details.items():
        if key in SWEEP_FIELDS:
            by_field[SWEEP_FIELDS[key]] = message
        elif key.startswith("grid."):
            name = re.split(r"[.\[]", key[len("grid.") :], maxsplit=1)[0]
            by_field.setdefault(f"{strategy_id}.{name}", f"{key}: {message}")
        else:
            general.append(message if key in ("grid", "body") else f"{key}: {message}")
    return by_field, general


async def sweep_form(request: HttpRequest, values: dict) -> dict:
    """The run form's datasets and strategies, each parameter's field holding values."""
    context = await form_context(request, values)
    for strategy in context["strategies"]:
        for field in strategy["fields"]:
            given = values.get("texts", {}).get(field["field"])
            field["value"] = field["value"] if given is None else given
    context.update(methods=METHODS, metrics=list(formatting.METRICS))
    return context


@page_view
async def sweep_new(request: HttpRequest) -> HttpResponse:
    """/runs/sweeps/new: the form for a sweep; POST creates it as POST /sweeps does, then
    goes to its page; the API's refusals are shown field by field."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    if request.method != "POST":
        values = {"seed": 0, **DEFAULT_COSTS, "strategy_id": next(iter(strategies.REGISTRY), "")}
        values.update(method="grid", maximize="sharpe")
        return render(request, "pages/sweep_new.html", await sweep_form(request, values))
    strategy_id = request.POST.get("strategy_id", "")
    body = sweep_body(request.POST, strategy_id)
    texts = {key: value for key, value in request.POST.items() if key.startswith(f"{strategy_id}.")}
    values = {**request.POST.dict(), "texts": texts}
    errors: dict = {}
    general: list[str] = []
    try:
        sweep_request = await sync_to_async(parse_sweep_request)(json.dumps(body).encode())
        creator = catalog.Creator(
            access.owner_of(request.user), client_address(request), limited=True
        )
        created, _ = await queries.create_sweep(sweep_request, None, creator)
    except ValidationError as bad:
        errors, general = sweep_errors(bad.details, strategy_id)
    except catalog.DATASET_REFUSALS as bad:
        errors = {"dataset_id": str(bad)}
    except (queries.NothingToCompute, queries.BadWindows) as bad:
        general = [str(bad)]
    except OverQuota as over:
        general = [str(over)]
    else:
        return redirect("sweep-page", sweep_id=created.run_id)
    context = await sweep_form(request, values)
    context.update(errors=errors, general=general)
    return render(request, "pages/sweep_new.html", context, status=422)
