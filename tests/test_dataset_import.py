"""Importing users' bars: the interval, zone and symbol stored; all or nothing; datasets
that runs use never change under them; runs name the exact bars they were computed on."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from backtests.catalog import bars_import
from backtests.engine import bars
from backtests.jobs.execute import execute
from backtests.models import Dataset, Run
from tests import bar_shapes
from tests.catalog_factories import make_run

pytestmark = pytest.mark.django_db


def import_bars(dataset_id: str, path: Path, *args: str) -> str:
    """Run import_bars and return what it printed."""
    from io import StringIO

    out = StringIO()
    call_command("import_bars", dataset_id, str(path), *args, stdout=out)
    return out.getvalue()


def data_files() -> list[str]:
    return sorted(p.name for p in Path(settings.DATA_DIR).iterdir())


def done_run(dataset_id: str, **fields) -> Run:
    run = make_run(Dataset.objects.get(pk=dataset_id), status="QUEUED", **fields)
    assert execute(run.run_id, "test") == "DONE"
    return Run.objects.get(pk=run.pk)


def test_a_daily_file_is_stored_with_its_interval_zone_and_count(tmp_path) -> None:
    path = bar_shapes.daily_nyse(tmp_path / "goog.csv")
    printed = import_bars("GOOG-d", path, "--symbol", "goog", "--tz", "America/New_York")
    dataset = Dataset.objects.get(pk="GOOG-d")
    assert (dataset.symbol, dataset.interval, dataset.tz) == ("GOOG", "1d", "America/New_York")
    assert dataset.products == ["BARS_1D"]
    assert dataset.bars == len(path.read_text().splitlines()) - 1
    assert (str(dataset.from_date), str(dataset.to_date)) == ("2019-01-02", "2021-12-31")
    assert dataset.first_bar_at.isoformat() == "2019-01-02T05:00:00+00:00"
    assert dataset.bars_path == f"{dataset.bars_sha256}.parquet"  # content-addressed
    assert (dataset.bars_sha256, dataset.size_bytes) == bars.sha256_of(
        Path(settings.DATA_DIR) / dataset.bars_path
    )
    assert "GOOG-d created: GOOG 1d bars" in printed
    assert data_files() == [dataset.bars_path]  # no temporary file left


def test_the_interval_can_be_given(tmp_path) -> None:
    # Daily bars given as 1w fail: weeks hold several of them.
    with pytest.raises(CommandError, match="a second bar in the same week"):
        import_bars(
            "X", bar_shapes.daily_nyse(tmp_path / "d.csv"), "--symbol", "X", "--interval", "1w"
        )
    import_bars("X", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "X", "--interval", "1w")
    assert Dataset.objects.get(pk="X").interval == "1w"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--symbol", ""], "symbol"),
        (["--symbol", "A" * 40], "symbol"),
        (["--symbol", "A" * 500], "symbol"),
        (["--symbol", "<b>AAPL</b>"], "symbol"),
        (["--symbol", "AAPL", "--tz", "EST5EDT-nope"], "tz"),
        (["--symbol", "AAPL", "--tz", "../../etc/passwd"], "tz"),
    ],
)
def test_bad_arguments_are_refused_before_reading(tmp_path, args: list[str], field: str) -> None:
    with pytest.raises(CommandError, match=f"refused, nothing written: {field}:"):
        import_bars("X", bar_shapes.weekly(tmp_path / "w.csv"), *args)
    assert not Dataset.objects.exists()


def test_a_lower_case_symbol_is_stored_upper_case_and_found_by_the_api(tmp_path, api) -> None:
    import_bars("eur-h", bar_shapes.hourly_fx(tmp_path / "fx.csv"), "--symbol", "eurusd")
    assert api.get("/datasets", {"symbol": "EURUSD"}).data["total"] == 1
    assert api.get("/datasets", {"symbol": "eurusd"}).data["items"][0]["dataset_id"] == "eur-h"


def test_a_dataset_with_runs_keeps_its_bars_and_its_runs_keep_their_figures(tmp_path, api):
    import_bars("GOOG-real", bar_shapes.daily_nyse(tmp_path / "goog.csv"), "--symbol", "GOOG")
    run = done_run("GOOG-real", params={"fast": 5, "slow": 20})
    before = Dataset.objects.values().get(pk="GOOG-real")
    shown = api.get(f"/backtests/{run.run_id}").data
    files = data_files()
    with pytest.raises(CommandError) as refused:
        import_bars("GOOG-real", bar_shapes.hourly_fx(tmp_path / "eur.csv"), "--symbol", "EURUSD")
    message = str(refused.value)
    assert "dataset GOOG-real has 1 run" in message and "under another dataset id" in message
    assert Dataset.objects.values().get(pk="GOOG-real") == before
    assert api.get(f"/backtests/{run.run_id}").data == shown
    assert data_files() == files
    assert Run.objects.get(pk=run.pk).bars_sha256 == before["bars_sha256"]


def test_the_very_same_bars_again_are_a_harmless_repeat(tmp_path) -> None:
    path = bar_shapes.weekly(tmp_path / "w.csv")
    import_bars("W", path, "--symbol", "W")
    done_run("W", params={"fast": 3, "slow": 8})
    assert "W unchanged" in import_bars("W", path, "--symbol", "W")


def test_a_dataset_without_runs_is_replaced_and_its_old_file_removed(
    tmp_path, django_capture_on_commit_callbacks
) -> None:
    import_bars("X", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "X")
    old = Dataset.objects.get(pk="X").bars_path
    with django_capture_on_commit_callbacks(execute=True):
        printed = import_bars("X", bar_shapes.monthly(tmp_path / "m.csv"), "--symbol", "X")
    assert "X replaced" in printed
    dataset = Dataset.objects.get(pk="X")
    assert dataset.interval == "1mo" and dataset.bars_path != old
    assert data_files() == [dataset.bars_path]


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (Dataset.objects, "update_or_create"),  # after the file is written, before the row
        (bars_import.os, "replace"),  # after the row is saved, before the file's rename
    ],
)
def test_a_failure_during_an_import_changes_nothing(tmp_path, monkeypatch, target, name):
    import_bars("X", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "X")
    before = Dataset.objects.values().get(pk="X")
    files = data_files()

    def fail(*args, **kwargs):
        raise OSError("the disk or the database went away")

    monkeypatch.setattr(target, name, fail)
    with pytest.raises(OSError):
        import_bars("X", bar_shapes.monthly(tmp_path / "m.csv"), "--symbol", "X")
    assert Dataset.objects.values().get(pk="X") == before
    assert data_files() == files  # the new file never took a name; the old one is intact
    assert bars.sha256_of(Path(settings.DATA_DIR) / before["bars_path"])[0] == before["bars_sha256"]


def test_a_run_records_the_bars_it_was_computed_on(tmp_path, api) -> None:
    import_bars("W", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "W")
    run = done_run("W", params={"fast": 3, "slow": 8})
    dataset = Dataset.objects.get(pk="W")
    assert run.bars_sha256 == dataset.bars_sha256
    assert api.get(f"/backtests/{run.run_id}").data["bars_sha256"] == dataset.bars_sha256
    manifest = json.loads((Path(settings.ARTIFACTS_DIR) / run.manifest_path).read_text())
    assert manifest["dataset"] == {
        "dataset_id": "W",
        "sha256": dataset.bars_sha256,
        "interval": "1w",
        "tz": "UTC",
    }


def test_a_bars_file_changed_on_disk_fails_the_run_clearly(tmp_path) -> None:
    import_bars("W", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "W")
    dataset = Dataset.objects.get(pk="W")
    path = Path(settings.DATA_DIR) / dataset.bars_path
    path.write_bytes(path.read_bytes()[:-1] + b"\0")  # replaced behind the catalog's back
    run = make_run(dataset, status="QUEUED", params={"fast": 3, "slow": 8})
    assert execute(run.run_id, "test") == "ERROR"
    run.refresh_from_db()
    assert "is not the bars file recorded" in run.error and "import the bars again" in run.error


def test_run_backtest_refuses_a_finished_run_without_force(tmp_path) -> None:
    import_bars("W", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "W")
    run = make_run(Dataset.objects.get(pk="W"), status="CANCELLED", params={"fast": 3, "slow": 8})
    with pytest.raises(CommandError, match="is CANCELLED, not QUEUED: nothing done"):
        call_command("run_backtest", run.run_id)
    assert Run.objects.get(pk=run.pk).status == "CANCELLED"
    call_command("run_backtest", run.run_id, "--force")
    assert Run.objects.get(pk=run.pk).status == "DONE"


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        ({"k_spread": 0, "fees_bps": 20_000}, "fees_bps must be at least 0 and less than 10,000"),
        ({"k_spread": 1e300, "fees_bps": 1}, "k_spread must be from 0 to 10"),
    ],
)
def test_costs_out_of_bounds_end_a_run_in_error(tmp_path, costs: dict, expected: str) -> None:
    """A run made past the API (the admin, a script) is refused by the engine itself."""
    import_bars("W", bar_shapes.weekly(tmp_path / "w.csv"), "--symbol", "W")
    run = make_run(Dataset.objects.get(pk="W"), status="QUEUED", slippage_fees=costs)
    assert execute(run.run_id, "test") == "ERROR"
    assert expected in Run.objects.get(pk=run.pk).error
