"""Catalog rows for tests, made straight through the ORM."""

import itertools
from datetime import UTC, date, datetime, timedelta

from backtests.models import Dataset, Run, RunMetrics

_counter = itertools.count()

# The example POST /backtests body.
CREATE_BODY = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "sma_crossover",
    "params": {"fast": 20, "slow": 50},
    "seed": 42,
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
    "speed": 60,
}


def make_dataset(dataset_id: str = "AAPL-2023-1m", **fields) -> Dataset:
    """A dataset, READY over 2023 for AAPL unless told otherwise."""
    values = {
        "symbol": "AAPL",
        "from_date": date(2023, 1, 1),
        "to_date": date(2023, 12, 31),
        "status": Dataset.Status.READY,
        "products": ["TRADES", "TBBO"],
    }
    values.update(fields)
    return Dataset.objects.create(dataset_id=dataset_id, **values)


def make_run(dataset: Dataset, **fields) -> Run:
    """A run with a unique input hash, created one minute after the previous one."""
    n = next(_counter)
    values = {
        "strategy_id": "sma_crossover",
        "params": {"fast": 20, "slow": 50},
        "seed": n,
        "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
        "input_hash": f"{n:064x}",
        "created_at": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
    }
    values.update(fields)
    return Run.objects.create(dataset=dataset, **values)


def add_metrics(run: Run, **fields) -> RunMetrics:
    """Metrics for a finished run."""
    values = dict.fromkeys(RunMetrics.FIELDS, 0.1)
    values.update(hit_rate=0.5, max_drawdown=-0.12, avg_drawdown=-0.05, trades=12)
    values.update(fields)
    return RunMetrics.objects.create(run=run, **values)
