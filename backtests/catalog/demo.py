"""A small demo catalog, so that a newcomer sees a populated admin and API at once."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from ulid import ULID

from backtests.catalog.hashing import input_hash
from backtests.models import Dataset, Run, RunMetrics

BASELINE = "AAPL-2023-1m"
CREATED = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)

DATASETS = [
    {
        "dataset_id": BASELINE,
        "symbol": "AAPL",
        "from_date": date(2023, 1, 1),
        "to_date": date(2023, 12, 31),
        "status": Dataset.Status.READY,
        "products": ["TRADES", "TBBO"],
        "calendar_version": "XNYS-2023.1",
        "size_bytes": 412_000_000,
    },
    {
        "dataset_id": "MSFT-2023-1m",
        "symbol": "MSFT",
        "from_date": date(2023, 1, 1),
        "to_date": date(2023, 12, 31),
        "status": Dataset.Status.READY,
        "products": ["TRADES"],
        "calendar_version": "XNYS-2023.1",
        "size_bytes": 388_000_000,
    },
    {
        "dataset_id": "TSLA-2024-1m",
        "symbol": "TSLA",
        "from_date": date(2024, 1, 1),
        "to_date": date(2024, 6, 30),
        "status": Dataset.Status.BUILDING,
        "products": ["TRADES", "TBBO"],
        "calendar_version": "XNYS-2024.1",
        "size_bytes": 0,
    },
]


@dataclass(frozen=True)
class DemoRun:
    """One demo run: its inputs and, when DONE, its headline result."""

    name: str
    dataset_id: str
    strategy_id: str
    params: dict
    status: str
    total_return: float = 0.0


RUNS = [
    DemoRun("sma-20-50", BASELINE, "sma_crossover", {"fast": 20, "slow": 50}, "DONE", 0.184),
    DemoRun("sma-10-30", BASELINE, "sma_crossover", {"fast": 10, "slow": 30}, "DONE", 0.092),
    DemoRun("meanrev-msft", "MSFT-2023-1m", "mean_reversion", {"window": 30}, "DONE", -0.031),
    DemoRun("momentum-aapl", BASELINE, "momentum", {"lookback": 60}, "RUNNING"),
    DemoRun("momentum-msft", "MSFT-2023-1m", "momentum", {"lookback": 60}, "QUEUED"),
    DemoRun("sma-5-20", BASELINE, "sma_crossover", {"fast": 5, "slow": 20}, "QUEUED"),
    DemoRun("breakout-aapl", BASELINE, "breakout", {"channel": 55}, "ERROR"),
    DemoRun("meanrev-aapl", BASELINE, "mean_reversion", {"window": 15}, "CANCELLED"),
]

SLIPPAGE_FEES = {"k_spread": 0.5, "fees_bps": 1}


def demo_run_id(index: int, name: str) -> str:
    """A fixed ULID per demo run, so that loading twice finds the same rows."""
    created = CREATED + timedelta(hours=index)
    entropy = hashlib.sha256(name.encode()).digest()[:10]
    return str(ULID.from_bytes(int(created.timestamp() * 1000).to_bytes(6, "big") + entropy))


def load_demo() -> tuple[int, int]:
    """Add the demo datasets and runs that are missing; return how many of each were added."""
    added_datasets = added_runs = 0
    with transaction.atomic():
        for fields in DATASETS:
            values = {k: v for k, v in fields.items() if k != "dataset_id"}
            values["generated_at"] = CREATED - timedelta(days=1)
            _, created = Dataset.objects.get_or_create(
                dataset_id=fields["dataset_id"], defaults=values
            )
            added_datasets += created
        for index, demo in enumerate(RUNS):
            added_runs += add_run(index, demo)
    return added_datasets, added_runs


def add_run(index: int, demo: DemoRun) -> bool:
    """Add one demo run (and its metrics when DONE) unless it is there already."""
    run_id = demo_run_id(index, demo.name)
    seed = 42
    speed = 60
    done = demo.status == Run.Status.DONE
    artifacts = f"artifacts/{run_id}"
    run, created = Run.objects.get_or_create(
        run_id=run_id,
        defaults={
            "dataset_id": demo.dataset_id,
            "strategy_id": demo.strategy_id,
            "params": demo.params,
            "seed": seed,
            "slippage_fees": SLIPPAGE_FEES,
            "speed": speed,
            "status": demo.status,
            "created_at": CREATED + timedelta(hours=index),
            "duration_ms": 41_250 + 1_000 * index if done else None,
            "metrics_path": f"{artifacts}/metrics.json" if done else "",
            "equity_path": f"{artifacts}/equity.parquet" if done else "",
            "orders_path": f"{artifacts}/orders.parquet" if done else "",
            "fills_path": f"{artifacts}/fills.parquet" if done else "",
            "manifest_path": f"{artifacts}/manifest.json" if done else "",
            "code_hash": hashlib.sha256(demo.strategy_id.encode()).hexdigest()[:40],
            "input_hash": input_hash(
                dataset_id=demo.dataset_id,
                strategy_id=demo.strategy_id,
                params=demo.params,
                seed=seed,
                slippage_fees=SLIPPAGE_FEES,
                speed=speed,
            ),
        },
    )
    if created and done:
        r = demo.total_return
        RunMetrics.objects.create(
            run=run,
            total_return=r,
            cagr=r,
            max_drawdown=-0.08 - abs(r) / 4,
            sharpe=round(r * 8, 3),
            sortino=round(r * 11, 3),
            hit_rate=0.54 if r > 0 else 0.47,
            avg_win=0.0062,
            avg_loss=-0.0049,
            turnover=12.4,
            slippage_share=0.18,
            fees_paid=1_830.0,
            computed_at=CREATED + timedelta(hours=index, minutes=1),
        )
    return created
