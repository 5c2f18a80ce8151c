"""A small demo catalog, so that a newcomer sees a populated admin and API at once.

Its READY datasets get synthetic bars (engine/synthetic.py) over the real NYSE calendar,
marked synthetic: two years of one-minute bars and ten years of daily ones. Its DONE
runs are computed by the engine through the same entry point as any run, with ordinary
costs (1 bp fees, slippage of 2% of a bar's range). Safe to run twice: what exists is
kept.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from ulid import ULID

from backtests.catalog.bars_import import bars_file, store_bars
from backtests.catalog.hashing import input_hash
from backtests.catalog.queries import default_speed
from backtests.engine import strategies, synthetic
from backtests.jobs import lifecycle
from backtests.jobs.execute import execute
from backtests.models import Dataset, Run

BASELINE = "AAPL-2023-1m"
DAILY = "SPY-2014-2023-1d"
CREATED = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)

DATASETS = [
    {
        "dataset_id": BASELINE,
        "symbol": "AAPL",
        "from_date": date(2023, 1, 1),
        "to_date": date(2023, 12, 31),
        "status": Dataset.Status.READY,
        "start_price": 130.0,
    },
    {
        "dataset_id": "MSFT-2023-1m",
        "symbol": "MSFT",
        "from_date": date(2023, 1, 1),
        "to_date": date(2023, 12, 31),
        "status": Dataset.Status.READY,
        "start_price": 240.0,
    },
    {
        "dataset_id": DAILY,
        "symbol": "SPY",
        "from_date": date(2014, 1, 1),
        "to_date": date(2023, 12, 31),
        "status": Dataset.Status.READY,
        "start_price": 180.0,
        "interval": "1d",
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


RUNS = [
    DemoRun("sma-20-50", BASELINE, "sma_crossover", {"fast": 20, "slow": 50}, "DONE"),
    DemoRun("sma-10-30", BASELINE, "sma_crossover", {"fast": 10, "slow": 30}, "DONE"),
    DemoRun("meanrev-msft", "MSFT-2023-1m", "mean_reversion", {"window": 30}, "DONE"),
    DemoRun("momentum-aapl", BASELINE, "momentum", {"lookback": 60}, "QUEUED"),
    DemoRun("momentum-msft", "MSFT-2023-1m", "momentum", {"lookback": 60}, "QUEUED"),
    DemoRun("sma-5-20", BASELINE, "sma_crossover", {"fast": 5, "slow": 20}, "QUEUED"),
    # Fails for real: its dataset is still BUILDING and has no bars.
    DemoRun("breakout-tsla", "TSLA-2024-1m", "breakout", {"channel": 55}, "ERROR"),
    # Cancelled for real, through the same path as the API's cancel.
    DemoRun("meanrev-aapl", BASELINE, "mean_reversion", {"window": 15}, "CANCELLED"),
    DemoRun("sma-10-30-daily", DAILY, "sma_crossover", {"fast": 10, "slow": 30}, "DONE"),
    DemoRun("buy-and-hold-daily", DAILY, "buy_and_hold", {}, "DONE"),
]

SLIPPAGE_FEES = {"k_spread": 0.02, "fees_bps": 1}


def demo_run_id(index: int, name: str) -> str:
    """A fixed ULID per demo run, so that loading twice finds the same rows."""
    created = CREATED + timedelta(hours=index)
    entropy = hashlib.sha256(name.encode()).digest()[:10]
    return str(ULID.from_bytes(int(created.timestamp() * 1000).to_bytes(6, "big") + entropy))


def load_demo() -> tuple[int, int]:
    """Add the demo datasets (with bars) and runs that are missing; return how many."""
    added_datasets = added_runs = 0
    for fields in DATASETS:
        added_datasets += add_dataset(fields)
    for index, demo in enumerate(RUNS):
        added_runs += add_run(index, demo)
    return added_datasets, added_runs


def add_dataset(fields: dict) -> bool:
    """A demo dataset; a READY one gets synthetic bars unless its file is there already."""
    dataset_id = fields["dataset_id"]
    existing = Dataset.objects.filter(dataset_id=dataset_id).first()
    if fields["status"] != Dataset.Status.READY:
        values = {k: v for k, v in fields.items() if k != "dataset_id"}
        values["generated_at"] = CREATED - timedelta(days=1)
        _, created = Dataset.objects.get_or_create(dataset_id=dataset_id, defaults=values)
        return created
    if existing and existing.bars_path and bars_file(existing).is_file():
        return False
    make = synthetic.generate_daily if fields.get("interval") == "1d" else synthetic.generate
    series = make(fields["symbol"], fields["from_date"], fields["to_date"], fields["start_price"])
    store_bars(
        dataset_id,
        series,
        fields["symbol"],
        synthetic=True,
        calendar_version=synthetic.calendar_version(),
        date_range=(fields["from_date"], fields["to_date"]),
    )
    return existing is None


def add_run(index: int, demo: DemoRun) -> bool:
    """Add one demo run unless it is there, and take it where it should be by the real
    paths: DONE and ERROR ones computed by the engine now, CANCELLED ones cancelled,
    QUEUED ones queued for a worker."""
    run_id = demo_run_id(index, demo.name)
    strategy = strategies.get(demo.strategy_id)
    params = strategies.resolve_params(strategy, demo.params)
    seed = 42
    speed = default_speed(Dataset.objects.get(pk=demo.dataset_id))
    done = demo.status == Run.Status.DONE
    run, created = Run.objects.get_or_create(
        run_id=run_id,
        defaults={
            "dataset_id": demo.dataset_id,
            "strategy_id": demo.strategy_id,
            "strategy_version": strategy.version,
            "params": params,
            "seed": seed,
            "slippage_fees": SLIPPAGE_FEES,
            "speed": speed,
            "status": Run.Status.QUEUED,
            "created_at": CREATED + timedelta(hours=index),
            "input_hash": input_hash(
                dataset_id=demo.dataset_id,
                strategy_id=demo.strategy_id,
                strategy_version=strategy.version,
                params=params,
                seed=seed,
                slippage_fees=SLIPPAGE_FEES,
                speed=speed,
            ),
        },
    )
    if done and run.status == Run.Status.DONE:
        if Path(settings.ARTIFACTS_DIR, run.metrics_path).is_file():
            return created
        lifecycle.rerun(run_id, queue=False)  # its artifacts are gone: compute it again
    elif not created:
        return False
    if demo.status in (Run.Status.DONE, Run.Status.ERROR):
        execute(run_id, "load_demo")
    elif demo.status == Run.Status.CANCELLED:
        lifecycle.cancel(run_id)
    else:
        lifecycle.enqueue(run_id)
    return created
