"""JSON representations of sweeps and their results (docs/api/openapi.yaml)."""

from typing import Any

from backtests.catalog.serializers import timestamp
from backtests.models import Sweep, SweepResult


def sweep_summary(row: Sweep) -> dict[str, Any]:
    """A sweep as GET /sweeps lists it."""
    return {
        "sweep_id": row.sweep_id,
        "status": row.status,
        "dataset_id": row.dataset_id,
        "symbol": row.dataset.symbol,
        "interval": row.dataset.interval,
        "strategy_id": row.strategy_id,
        "method": row.method,
        "maximize": row.maximize,
        "total": row.total,
        "done": row.done,
        "skipped": row.skipped,
        "best": row.best,
        "created_at": timestamp(row.created_at),
        "started_at": timestamp(row.started_at),
        "finished_at": timestamp(row.finished_at),
    }


def sweep_detail(row: Sweep) -> dict[str, Any]:
    """A sweep as GET /sweeps/<id> shows it: its inputs, progress and outcome."""
    detail = sweep_summary(row)
    detail.update(
        strategy_version=row.strategy_version,
        grid=row.grid,
        max_variants=row.max_variants,
        seed=row.seed,
        slippage_fees=row.slippage_fees,
        error=row.error or None,
        cancel_requested=row.cancel_requested,
    )
    if row.method == "walk_forward":
        detail.update(walk_forward=row.walk_forward, windows=row.windows, oos_run_id=row.oos_run_id)
    base = f"/sweeps/{row.sweep_id}"
    detail["links"] = {
        "self": base,
        "results": f"{base}/results",
        "heatmap": f"{base}/heatmap",
        "events": f"{base}/events",
        "page": f"/runs/sweeps/{row.sweep_id}",
    }
    return detail


def result_item(row: dict[str, Any]) -> dict[str, Any]:
    """A results row as an item: its grid number, parameters, figures (or error)."""
    metrics = None if row["error"] else {name: row[name] for name in SweepResult.FIELDS}
    return {
        "variant": row["variant"],
        "params": row["params"],
        "metrics": metrics,
        "fills": row["fills"],
        "error": row["error"] or None,
    }


def csv_header(params: list[str]) -> tuple[str, ...]:
    """The results CSV's columns: variant, each parameter, each figure, error."""
    return ("variant", *params, *SweepResult.FIELDS, "error")


def csv_row(row: dict[str, Any], params: list[str]) -> list:
    """A results row in csv_header's columns."""
    return [
        row["variant"],
        *(row["params"].get(name) for name in params),
        *(row[name] for name in SweepResult.FIELDS),
        row["error"],
    ]
