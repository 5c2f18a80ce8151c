"""The pages: the run list (/), a run (/runs/<id>), the new-run form (/runs/new) and the
comparison of runs (/runs/compare). Each reads what the JSON API reads, through the same
queries and serializers; the charts' scripts call the API itself."""

import dataclasses
import json
import math
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from accounts.quotas import OverQuota
from backtests.catalog import access, queries, run_results
from backtests.catalog.rest import client_address
from backtests.catalog.serializers import run_detail, run_summary
from backtests.catalog.validation import (
    DatasetQuery,
    RunQuery,
    ValidationError,
    parse_run_query,
    parse_run_request,
)
from backtests.engine import artifacts
from backtests.engine import strategies as registry
from backtests.models import Run
from backtests.pages import formatting
from backtests.pages.access import page_view

PAGE_SIZE = 25
TRADES_PAGE_SIZE = 50
LIST_FILTERS = ("symbol", "strategy_id", "status")
TRADE_SORTS = {
    "entry_ts": ("entry_ts", False),
    "-entry_ts": ("entry_ts", True),
    "pnl": ("pnl", False),
    "-pnl": ("pnl", True),
    "return": ("return", False),
    "-return": ("return", True),
}


def page_number(raw: str | None) -> int:
    """A 1-based page number from the query; 1 when it is missing or not a number."""
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 7 else 1


@require_safe
@page_view
async def run_list(request: HttpRequest) -> HttpResponse:
    """/: the runs, newest first, filtered by symbol, strategy and status, paged."""
    filters = {name: request.GET[name] for name in LIST_FILTERS if request.GET.get(name)}
    page = page_number(request.GET.get("page"))
    problems: dict[str, str] = {}
    try:
        query = parse_run_query(
            {**{k: [v] for k, v in filters.items()}, "limit": [str(PAGE_SIZE)], "offset": ["0"]}
        )
    except ValidationError as bad:
        problems, query = bad.details, RunQuery(limit=PAGE_SIZE)
    if not problems:
        query = dataclasses.replace(query, offset=(page - 1) * PAGE_SIZE)
    found = await queries.list_runs(query, request.user)
    rows = []
    for row in found.rows:
        item = run_summary(row, found.datasets[row["dataset_id"]])
        item["params_text"] = formatting.params_text(item["params"])
        item["figures"] = [
            formatting.figure((item["metrics"] or {}).get(name), formatting.METRICS[name][1])
            for name in formatting.SUMMARY
        ]
        rows.append(item)
    pages = max(1, math.ceil(found.total / PAGE_SIZE))

    def link(number: int) -> str:
        return "?" + urlencode({**filters, "page": number})

    context = {
        "rows": rows,
        "total": found.total,
        "page": page,
        "pages": pages,
        "previous": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < pages else None,
        "filters": filters,
        "problems": problems,
        "strategies": sorted(registry.REGISTRY),
        "statuses": Run.Status.values,
        "summary_labels": [formatting.METRICS[name][0] for name in formatting.SUMMARY],
    }
    return render(request, "pages/run_list.html", context, status=400 if problems else 200)


def trades_of(run_id: str, user) -> list[dict]:
    """The DONE run's trades (blocking: in a thread); [] when its files cannot be read."""
    files = run_results.artifacts_of(run_id, user)
    if files is None:
        return []
    try:
        return run_results.trade_rows(files)
    except artifacts.ArtifactUnreadable:
        return []


def sorted_trades(trades: list[dict], sort: str) -> list[dict]:
    """Trades in the chosen order; open trades (no PnL) last."""
    key, reverse = TRADE_SORTS.get(sort, TRADE_SORTS["entry_ts"])
    present = [t for t in trades if t[key] is not None]
    missing = [t for t in trades if t[key] is None]
    return sorted(present, key=lambda t: t[key], reverse=reverse) + missing


def trade_cells(trade: dict, index: int) -> dict:
    """A trade's table cells as text (the API's item, for people)."""
    dash = "\u2013"  # an en dash

    def price(value):
        return dash if value is None else f"{value:,.6f}".rstrip("0").rstrip(".")

    return {
        "index": index,
        "entry_ts": trade["entry_ts"],
        "exit_ts": trade["exit_ts"] or "open",
        "side": trade["side"],
        "qty": f"{trade['qty']:,.4f}",
        "entry_price": price(trade["entry_price"]),
        "exit_price": price(trade["exit_price"]),
        "pnl": dash if trade["pnl"] is None else f"{trade['pnl']:,.2f}",
        "pnl_raw": "" if trade["pnl"] is None else repr(trade["pnl"]),
        "return": dash if trade["return"] is None else f"{trade['return'] * 100:,.2f}%",
        "fees": f"{trade['fees']:,.2f}",
    }


@require_safe
@page_view
async def run_page(request: HttpRequest, run_id: str) -> HttpResponse:
    """/runs/<id>: the run's header, statistics, charts and trades."""
    run = await queries.get_run(run_id)
    if run is None:
        return render(request, "pages/problem.html", {"problem": f"No run {run_id}."}, status=404)
    if not access.may_read_run(request.user, run.owner_id):
        problem = f"Run {run_id} is another user's."
        return render(request, "pages/problem.html", {"problem": problem}, status=403)
    detail = run_detail(run)
    trades: list[dict] = []
    if run.status == Run.Status.DONE:
        trades = await sync_to_async(trades_of)(run_id, request.user)
    sort = request.GET.get("sort", "entry_ts")
    sort = sort if sort in TRADE_SORTS else "entry_ts"
    trades = sorted_trades(trades, sort)
    pages = max(1, math.ceil(len(trades) / TRADES_PAGE_SIZE))
    page = min(page_number(request.GET.get("trades_page")), pages)
    shown = trades[(page - 1) * TRADES_PAGE_SIZE : page * TRADES_PAGE_SIZE]

    def link(**changes) -> str:
        return "?" + urlencode({"sort": sort, "trades_page": page, **changes})

    def toggle(name: str, first: str) -> str:
        """The link that sorts by `name`: `first` direction, or the other when it is on."""
        other = name if first.startswith("-") else f"-{name}"
        return link(sort=other if sort == first else first, trades_page=1)

    context = {
        "run": detail,
        "params_text": formatting.params_text(detail["params"]),
        "statistics": formatting.statistics(detail["metrics"]),
        "trades": [
            trade_cells(trade, (page - 1) * TRADES_PAGE_SIZE + i) for i, trade in enumerate(shown)
        ],
        "trade_count": len(trades),
        "trades_page": page,
        "trades_pages": pages,
        "sort": sort,
        "sort_links": {
            "entry": toggle("entry_ts", "entry_ts"),
            "pnl": toggle("pnl", "-pnl"),
            "return": toggle("return", "-return"),
        },
        "previous": link(trades_page=page - 1) if page > 1 else None,
        "next": link(trades_page=page + 1) if page < pages else None,
        "waiting": run.status in (Run.Status.QUEUED, Run.Status.RUNNING),
    }
    return render(request, "pages/run.html", context)


# The form's fields for the create's own (the params are "<strategy>.<param>").
FORM_FIELDS = {
    "dataset_id": "dataset_id",
    "strategy_id": "strategy_id",
    "seed": "seed",
    "slippage_fees.k_spread": "k_spread",
    "slippage_fees.fees_bps": "fees_bps",
}
DEFAULT_COSTS = {"k_spread": 0.1, "fees_bps": 1.0}


def number(text: str):
    """A form's number as JSON would carry it: int when it has no fraction, else float;
    the text itself when it is not a number (the API's validation then names the field)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def form_body(post, strategy_id: str) -> dict:
    """POST /backtests' body from the form's fields (the chosen strategy's parameters)."""
    strategy = registry.REGISTRY.get(strategy_id)
    params = {}
    if strategy is not None:
        for name in strategy.params:
            raw = post.get(f"{strategy_id}.{name}", "")
            if raw.strip():
                params[name] = number(raw)
    return {
        "dataset_id": post.get("dataset_id", ""),
        "strategy_id": strategy_id,
        "params": params,
        "seed": number(post.get("seed", "0")),
        "slippage_fees": {
            "k_spread": number(post.get("k_spread", "")),
            "fees_bps": number(post.get("fees_bps", "")),
        },
    }


def field_errors(details: dict, strategy_id: str) -> tuple[dict, list[str]]:
    """The API's 422 details as (errors by form field, errors of the whole form)."""
    by_field, general = {}, []
    for key, message in details.items():
        if key in FORM_FIELDS:
            by_field[FORM_FIELDS[key]] = message
        elif key.startswith("params."):
            by_field[f"{strategy_id}.{key[len('params.') :]}"] = message
        else:
            general.append(f"{key}: {message}" if key != "params" else message)
    return by_field, general


async def form_context(request: HttpRequest, values: dict) -> dict:
    """The form's strategies (from the registry, as GET /strategies lists them), the
    datasets the user may run on, and the values to show."""
    datasets = await queries.list_datasets(DatasetQuery(limit=500), request.user)
    strategies = []
    for strategy in registry.REGISTRY.values():
        described = strategy.describe()
        chosen = values.get("strategy_id") == strategy.strategy_id
        params = []
        for name, spec in described["params"].items():
            field = f"{strategy.strategy_id}.{name}"
            given = values.get("params", {}).get(name) if chosen else None
            params.append(
                {
                    **spec,
                    "name": name,
                    "field": field,
                    "value": spec["default"] if given is None else given,
                    "step": "1" if spec["type"] == "integer" else "any",
                }
            )
        strategies.append({**described, "fields": params, "chosen": chosen})
    ready = [d for d, _ in datasets.items if d.status == "READY"]
    return {"strategies": strategies, "datasets": ready, "values": values}


@page_view
async def run_new(request: HttpRequest) -> HttpResponse:
    """/runs/new: the form for a run; POST creates it as POST /backtests does, then goes to
    the run's page; the API's refusals are shown field by field."""
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    if request.method != "POST":
        values = {"seed": 1, **DEFAULT_COSTS, "strategy_id": next(iter(registry.REGISTRY), "")}
        source = (
            await queries.get_run(request.GET.get("from", "")) if request.GET.get("from") else None
        )
        if source is not None and access.may_read_run(request.user, source.owner_id):
            values = {
                "dataset_id": source.dataset_id,
                "strategy_id": source.strategy_id,
                "params": source.params,
                "seed": source.seed,
                **source.slippage_fees,
            }
        return render(request, "pages/run_new.html", await form_context(request, values))
    strategy_id = request.POST.get("strategy_id", "")
    body = form_body(request.POST, strategy_id)
    values = {**body, **body["slippage_fees"]}
    errors: dict = {}
    general: list[str] = []
    try:
        run_request = parse_run_request(json.dumps(body).encode())
        creator = queries.Creator(
            access.owner_of(request.user), client_address(request), limited=True
        )
        created = await queries.create_run(run_request, None, creator)
    except ValidationError as bad:
        errors, general = field_errors(bad.details, strategy_id)
    except queries.DATASET_REFUSALS as bad:
        errors = {"dataset_id": str(bad)}
    except OverQuota as over:
        general = [str(over)]
    else:
        return redirect("run-page", run_id=created.run_id)
    context = await form_context(request, values)
    context.update(errors=errors, general=general)
    return render(request, "pages/run_new.html", context, status=422)


MAX_COMPARED = 5


@require_safe
@page_view
async def run_compare(request: HttpRequest) -> HttpResponse:
    """/runs/compare?ids=A,B,...: 2 to 5 runs' statistics side by side, and their equity
    normalised to 1 on one chart."""
    ids = [i for i in request.GET.get("ids", "").split(",") if i][: MAX_COMPARED + 1]
    runs, problems = [], []
    for run_id in dict.fromkeys(ids):
        run = await queries.get_run(run_id)
        if run is None:
            problems.append(f"No run {run_id}.")
        elif not access.may_read_run(request.user, run.owner_id):
            problems.append(f"Run {run_id} is another user's.")
        elif run.status != Run.Status.DONE:
            problems.append(f"Run {run_id} is {run.status}: only DONE runs compare.")
        else:
            runs.append(run_detail(run))
    if not 2 <= len(runs) <= MAX_COMPARED and not problems:
        problems.append(f"Compare 2 to {MAX_COMPARED} DONE runs: /runs/compare?ids=A,B")
    rows = [
        {
            "name": name,
            "label": label,
            "cells": [formatting.figure((r["metrics"] or {}).get(name), kind) for r in runs],
        }
        for name, (label, kind) in formatting.METRICS.items()
    ]
    context = {
        "runs": [{**r, "params_text": formatting.params_text(r["params"])} for r in runs],
        "rows": rows,
        "problems": problems,
        "ids": ",".join(r["run_id"] for r in runs),
    }
    return render(request, "pages/compare.html", context, status=400 if problems else 200)
