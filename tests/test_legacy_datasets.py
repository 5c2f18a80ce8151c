"""Datasets and runs recorded before intervals and content addresses: the migration
describes their bars, and the engine reads their interval from the dataset."""

import importlib
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.apps import apps
from django.conf import settings

from backtests.engine import bar_files, metrics, strategies, synthetic
from backtests.engine.simulation import Costs, simulate
from backtests.jobs.execute import execute
from backtests.models import Dataset, Run
from tests import bar_shapes
from tests.catalog_factories import make_dataset, make_run

pytestmark = pytest.mark.django_db

PARAMS = {"fast": 3, "slow": 8}
migration = importlib.import_module("backtests.migrations.0004_dataset_interval_and_run_bars")


def legacy_dataset(dataset_id: str, series) -> Dataset:
    """A dataset as import_bars wrote it before: `<id>.parquet`, no metadata in the file."""
    path = Path(settings.DATA_DIR) / f"{dataset_id}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = series.to_table()
    pq.write_table(table.replace_schema_metadata(None), path, compression="zstd")
    from backtests.engine.bars import sha256_of

    digest, size = sha256_of(path)
    return make_dataset(
        dataset_id, bars_path=path.name, bars_sha256=digest, size_bytes=size, tz=series.tz
    )


def test_the_migration_describes_legacy_bars() -> None:
    daily = synthetic.generate_daily("SPY", date(2020, 1, 1), date(2020, 12, 31))
    minute = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 3))
    legacy_dataset("SPY-old", daily)
    legacy_dataset("AAPL-old", minute)
    done = make_run(Dataset.objects.get(pk="SPY-old"), status="DONE")
    migration.describe_existing_bars(apps, None)
    spy, aapl = Dataset.objects.get(pk="SPY-old"), Dataset.objects.get(pk="AAPL-old")
    assert (spy.interval, spy.products, spy.bars) == ("1d", ["BARS_1D"], len(daily))
    assert (aapl.interval, aapl.bars) == ("1m", len(minute))
    assert spy.first_bar_at.isoformat() == "2020-01-02T05:00:00+00:00"
    assert Run.objects.get(pk=done.pk).bars_sha256 == spy.bars_sha256


def test_a_legacy_file_is_computed_at_its_datasets_interval(tmp_path) -> None:
    weekly = bar_files.read(bar_shapes.weekly(tmp_path / "w.csv"))
    legacy_dataset("W-old", weekly)
    migration.describe_existing_bars(apps, None)
    assert Dataset.objects.get(pk="W-old").interval == "1w"
    run = make_run(Dataset.objects.get(pk="W-old"), status="QUEUED", params=PARAMS, speed=60)
    assert execute(run.run_id, "test") == "DONE"
    run.refresh_from_db()
    sim = simulate(weekly, strategies.signal("sma_crossover", PARAMS, weekly), Costs(0.5, 1))
    expected, _ = metrics.compute(sim, weekly)  # weekly returns, 52 a year
    assert run.metrics.sharpe == pytest.approx(expected["sharpe"], rel=1e-12)
