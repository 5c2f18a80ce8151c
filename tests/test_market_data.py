"""import_bars, run_backtest and the demo's synthetic data, through the management commands."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from backtests.engine import artifacts, bars, synthetic
from backtests.models import Dataset, Run, RunMetrics
from tests.catalog_factories import make_dataset, make_run

pytestmark = pytest.mark.django_db

HEADER = "ts,open,high,low,close,volume\n"


def write_csv(path: Path, n: int = 300, bad_row: int | None = None) -> Path:
    """n one-minute bars of a gentle zigzag; row `bad_row` (1-based) gets high < close."""
    lines = []
    for i in range(n):
        minute = np.datetime64("2023-03-01T14:30") + np.timedelta64(i, "m")
        close = 100 + (i % 7) - 3
        high = close + 1 if i + 1 != bad_row else close - 0.5
        lines.append(f"{minute}:00Z,{close},{high},{close - 1},{close},{1000 + i}")
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


def test_import_bars_makes_a_ready_dataset_with_its_file(tmp_path: Path, capsys) -> None:
    call_command("import_bars", "XYZ-1m", str(write_csv(tmp_path / "x.csv")), "--symbol", "XYZ")
    dataset = Dataset.objects.get(pk="XYZ-1m")
    assert (dataset.status, dataset.symbol, dataset.synthetic) == ("READY", "XYZ", False)
    assert (str(dataset.from_date), str(dataset.to_date)) == ("2023-03-01", "2023-03-01")
    path = Path(settings.DATA_DIR) / dataset.bars_path
    assert (dataset.bars_sha256, dataset.size_bytes) == bars.sha256_of(path)
    assert pq.read_table(path).num_rows == 300
    assert "READY" in capsys.readouterr().out


def test_a_bad_file_is_refused_naming_the_row_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as refused:
        call_command(
            "import_bars",
            "XYZ-1m",
            str(write_csv(tmp_path / "x.csv", bad_row=42)),
            "--symbol",
            "XYZ",
        )
    assert "row 42, column high (file column 3)" in str(refused.value)
    assert "nothing written" in str(refused.value)
    assert not Dataset.objects.exists()
    assert not Path(settings.DATA_DIR).exists() or not any(Path(settings.DATA_DIR).iterdir())


def test_a_bad_file_leaves_an_existing_dataset_as_it_was(tmp_path: Path) -> None:
    call_command("import_bars", "XYZ-1m", str(write_csv(tmp_path / "a.csv")), "--symbol", "XYZ")
    before = Dataset.objects.values().get(pk="XYZ-1m")
    with pytest.raises(CommandError):
        call_command(
            "import_bars",
            "XYZ-1m",
            str(write_csv(tmp_path / "b.csv", bad_row=1)),
            "--symbol",
            "XYZ",
        )
    assert Dataset.objects.values().get(pk="XYZ-1m") == before
    assert bars.sha256_of(Path(settings.DATA_DIR) / before["bars_path"])[0] == before["bars_sha256"]


def test_import_bars_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_bars", "XYZ-1m", str(tmp_path / "none.csv"), "--symbol", "XYZ")


def imported_run(tmp_path: Path, **fields) -> Run:
    call_command("import_bars", "XYZ-1m", str(write_csv(tmp_path / "x.csv")), "--symbol", "XYZ")
    return make_run(Dataset.objects.get(pk="XYZ-1m"), status="QUEUED", **fields)


def test_run_backtest_records_done_with_the_engines_metrics(tmp_path: Path) -> None:
    run = imported_run(tmp_path, strategy_id="sma_crossover", params={"fast": 3, "slow": 8})
    call_command("run_backtest", run.run_id)
    run.refresh_from_db()
    assert run.status == "DONE" and run.duration_ms is not None and run.code_hash
    written = json.loads((Path(settings.ARTIFACTS_DIR) / run.metrics_path).read_text())
    metrics = RunMetrics.objects.get(run=run)
    for name, value in written["metrics"].items():
        assert getattr(metrics, name) == value
    for path in run.artifacts().values():
        assert (Path(settings.ARTIFACTS_DIR) / path).is_file()


def test_the_same_inputs_give_byte_identical_files(tmp_path: Path) -> None:
    run = imported_run(tmp_path, strategy_id="momentum", params={"lookback": 5})
    call_command("run_backtest", run.run_id)
    folder = Path(settings.ARTIFACTS_DIR) / run.run_id
    first = {name: (folder / name).read_bytes() for name in ("equity.parquet", "fills.parquet")}
    metrics = (folder / "metrics.json").read_text()
    call_command("run_backtest", run.run_id, "--force")
    assert {name: (folder / name).read_bytes() for name in first} == first
    assert (folder / "metrics.json").read_text() == metrics
    assert [p.name for p in folder.parent.iterdir()] == [run.run_id]  # no temp folder left


def test_a_dataset_without_bars_ends_in_error_with_a_message(db) -> None:
    run = make_run(make_dataset(), status="QUEUED")
    with pytest.raises(CommandError, match="has no bars"):
        call_command("run_backtest", run.run_id)
    run.refresh_from_db()
    assert run.status == "ERROR" and "has no bars" in run.error
    assert not RunMetrics.objects.filter(run=run).exists()


def test_run_backtest_names_an_unknown_run(db) -> None:
    with pytest.raises(CommandError, match="no run nope"):
        call_command("run_backtest", "nope")


def test_demo_bars_follow_the_nyse_calendar_and_are_marked_synthetic(db) -> None:
    call_command("load_demo")
    dataset = Dataset.objects.get(pk="AAPL-2023-1m")
    assert dataset.synthetic and dataset.status == "READY"
    assert dataset.calendar_version == synthetic.calendar_version()
    series = bars.load(Path(settings.DATA_DIR) / dataset.bars_path)
    days = np.unique(series.ts // (86_400 * 10**9))
    assert len(days) == 250  # NYSE sessions in 2023
    per_day = np.bincount(np.searchsorted(days, series.ts // (86_400 * 10**9)))
    assert set(per_day.tolist()) == {390, 210}  # regular days and the early closes
    assert (per_day == 210).sum() == 2  # the early closes of 2023: Jul 3 and Nov 24
    assert len(series) == 250 * 390 - 2 * 180


def test_demo_done_runs_are_computed_by_the_engine(db) -> None:
    call_command("load_demo")
    for run in Run.objects.filter(status="DONE"):
        written = json.loads((Path(settings.ARTIFACTS_DIR) / run.metrics_path).read_text())
        assert written["metrics"]["total_return"] == run.metrics.total_return
        manifest = json.loads((Path(settings.ARTIFACTS_DIR) / run.manifest_path).read_text())
        assert manifest["dataset"]["sha256"] == run.dataset.bars_sha256
        assert artifacts.verify(Path(settings.ARTIFACTS_DIR) / run.run_id) == []


def test_a_runs_folder_is_checked_against_its_manifest(db) -> None:
    call_command("load_demo")
    run = Run.objects.filter(status="DONE").first()
    folder = Path(settings.ARTIFACTS_DIR) / run.run_id
    manifest = json.loads((folder / "run-manifest.json").read_text())
    assert sorted(manifest["files"]) == [
        "equity.parquet",
        "fills.parquet",
        "metrics.json",
        "orders.parquet",
    ]
    assert manifest["files"]["equity.parquet"] == artifacts.file_sha256(folder / "equity.parquet")
    (folder / "fills.parquet").write_bytes(b"changed")
    (folder / "orders.parquet").unlink()
    assert sorted(artifacts.verify(folder)) == [
        "fills.parquet: sha256 differs from the manifest's",
        "orders.parquet: missing",
    ]


def test_demo_has_daily_bars_and_ordinary_figures(db) -> None:
    call_command("load_demo")
    daily = Dataset.objects.get(pk="SPY-2014-2023-1d")
    assert (daily.interval, daily.products, daily.tz) == ("1d", ["BARS_1D"], "America/New_York")
    assert daily.bars == 2516  # NYSE sessions from 2014 to 2023
    done = Run.objects.filter(status="DONE").select_related("metrics")
    assert {run.dataset_id for run in done} >= {"AAPL-2023-1m", "SPY-2014-2023-1d"}
    for run in done:
        assert run.slippage_fees == {"k_spread": 0.02, "fees_bps": 1}
        # Realistic costs: no demo run is wiped out by them, and Sharpe is a daily figure.
        assert run.metrics.total_return > -0.6, (run.dataset_id, run.strategy_id)
        assert abs(run.metrics.sharpe) < 5
