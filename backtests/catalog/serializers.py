"""JSON representations of catalog objects for the REST API (docs/api/openapi.yaml).

A list is built from plain rows (`.values()`), which is several times cheaper than model
instances for a page of 500; a single run is built from its model.
"""

from datetime import UTC, date, datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist

from backtests.models import Dataset, Run, RunMetrics

SUMMARY_METRICS = ("total_return", "sharpe", "max_drawdown")
RUN_SUMMARY_FIELDS = (
    "run_id",
    "dataset_id",
    "status",
    "strategy_id",
    "params",
    "seed",
    "speed",
    "created_at",
    "duration_ms",
    "metrics__run_id",  # None when the run has no metrics row
    *(f"metrics__{name}" for name in SUMMARY_METRICS),
)
DATASET_SUMMARY_FIELDS = ("dataset_id", "symbol", "interval", "from_date", "to_date", "synthetic")


def timestamp(value: datetime | None) -> str | None:
    """An aware datetime as ISO-8601 UTC with a Z suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day(value: date) -> str:
    """A date as YYYY-MM-DD."""
    return value.isoformat()


def dataset_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The fields of a dataset that a run listing shows, from a DATASET_SUMMARY_FIELDS row."""
    return {
        "dataset_id": row["dataset_id"],
        "symbol": row["symbol"],
        "interval": row["interval"],
        "from": day(row["from_date"]),
        "to": day(row["to_date"]),
        "synthetic": row["synthetic"],
    }


def run_summary(row: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """A run as an item of GET /backtests, from a RUN_SUMMARY_FIELDS row and its dataset's."""
    has_metrics = row["metrics__run_id"] is not None
    return {
        "run_id": row["run_id"],
        "status": row["status"],
        "strategy_id": row["strategy_id"],
        "params": row["params"],
        "dataset": dataset_summary(dataset),
        "seed": row["seed"],
        "speed": row["speed"],
        "created_at": timestamp(row["created_at"]),
        "duration_ms": row["duration_ms"],
        "metrics": (
            {name: row[f"metrics__{name}"] for name in SUMMARY_METRICS} if has_metrics else None
        ),
    }


def metrics_of(run: Run) -> RunMetrics | None:
    """The run's metrics row, or None (loaded with select_related: no query)."""
    try:
        return run.metrics
    except ObjectDoesNotExist:
        return None


def fields_of(instance: Run | Dataset, names: tuple[str, ...]) -> dict:
    """A model instance as the row `.values(*names)` would give (a missing relation: None)."""
    row = {}
    for name in names:
        value = instance
        for part in name.split("__"):
            value = getattr(value, part, None) if value is not None else None
        row[name] = value
    return row


def run_detail(run: Run) -> dict[str, Any]:
    """A run as GET /backtests/<id> answers it (loaded with its dataset and metrics)."""
    metrics = metrics_of(run)
    dataset = run.dataset
    detail = run_summary(
        fields_of(run, RUN_SUMMARY_FIELDS), fields_of(dataset, DATASET_SUMMARY_FIELDS)
    )
    detail["dataset"].update(
        status=dataset.status,
        products=dataset.products,
        tz=dataset.tz,
        calendar_version=dataset.calendar_version,
    )
    detail.update(
        owner=username(run.owner),
        artifacts_pruned_at=timestamp(run.artifacts_pruned_at),
        params=run.params,
        strategy_version=run.strategy_version or None,
        slippage_fees=run.slippage_fees,
        code_hash=run.code_hash or None,
        bars_sha256=run.bars_sha256 or None,
        error=run.error or None,
        started_at=timestamp(run.started_at),
        finished_at=timestamp(run.finished_at),
        attempts=run.attempts,
        cancel_requested=run.cancel_requested,
        input_hash=run.input_hash,
        artifacts=run.artifacts(),
        metrics=(
            {
                **{name: getattr(metrics, name) for name in RunMetrics.FIELDS},
                "computed_at": timestamp(metrics.computed_at),
            }
            if metrics
            else None
        ),
    )
    return detail


def dataset_detail(dataset: Dataset, runs: int) -> dict[str, Any]:
    """A dataset as GET /datasets and GET /datasets/<id> answer it."""
    return {
        **dataset_summary(fields_of(dataset, DATASET_SUMMARY_FIELDS)),
        "status": dataset.status,
        "bars": dataset.bars,
        "first_bar_at": timestamp(dataset.first_bar_at),
        "last_bar_at": timestamp(dataset.last_bar_at),
        "tz": dataset.tz,
        "products": dataset.products,
        "sha256": dataset.bars_sha256 or None,
        "size_bytes": dataset.size_bytes,
        "calendar_version": dataset.calendar_version,
        "generated_at": timestamp(dataset.generated_at),
        "runs": runs,
        "owner": username(dataset.owner),
        "public": dataset.public,
    }


def username(user) -> str | None:
    """Who owns a run or a dataset; None: the operator's."""
    return None if user is None else user.get_username()
