"""JSON representations of catalog objects for the REST API (docs/api/openapi.yaml)."""

from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist

from backtests.models import Dataset, Run, RunMetrics

SUMMARY_METRICS = ("total_return", "sharpe", "max_drawdown")


def timestamp(value: datetime | None) -> str | None:
    """An aware datetime as ISO-8601 UTC with a Z suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day(value: date) -> str:
    """A date as YYYY-MM-DD."""
    return value.isoformat()


def metrics_of(run: Run) -> RunMetrics | None:
    """The run's metrics row, or None (loaded with select_related: no query)."""
    try:
        return run.metrics
    except ObjectDoesNotExist:
        return None


def dataset_summary(dataset: Dataset) -> dict[str, Any]:
    """The fields of a dataset that a run listing shows."""
    return {
        "dataset_id": dataset.dataset_id,
        "symbol": dataset.symbol,
        "from": day(dataset.from_date),
        "to": day(dataset.to_date),
    }


def run_summary(run: Run) -> dict[str, Any]:
    """A run as an item of GET /backtests."""
    metrics = metrics_of(run)
    return {
        "run_id": run.run_id,
        "status": run.status,
        "strategy_id": run.strategy_id,
        "dataset": dataset_summary(run.dataset),
        "seed": run.seed,
        "speed": run.speed,
        "created_at": timestamp(run.created_at),
        "duration_ms": run.duration_ms,
        "metrics": {name: getattr(metrics, name) for name in SUMMARY_METRICS} if metrics else None,
    }


def run_detail(run: Run) -> dict[str, Any]:
    """A run as GET /backtests/<id> answers it."""
    metrics = metrics_of(run)
    dataset = run.dataset
    return {
        **run_summary(run),
        "dataset": {
            **dataset_summary(dataset),
            "status": dataset.status,
            "products": dataset.products,
            "tz": dataset.tz,
            "calendar_version": dataset.calendar_version,
        },
        "params": run.params,
        "slippage_fees": run.slippage_fees,
        "code_hash": run.code_hash or None,
        "input_hash": run.input_hash,
        "artifacts": run.artifacts(),
        "metrics": (
            {
                **{name: getattr(metrics, name) for name in RunMetrics.FIELDS},
                "computed_at": timestamp(metrics.computed_at),
            }
            if metrics
            else None
        ),
    }
