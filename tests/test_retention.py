"""Artifact retention (#18): finished runs' folders pruned by age and by total size, oldest
first, never a run being played; the statistics stay, playback says ARTIFACTS_MISSING."""

import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from backtests.catalog.bars_import import store_bars
from backtests.engine import synthetic
from backtests.jobs import retention
from backtests.jobs.execute import execute
from backtests.management.commands.run_worker import Sweeper
from backtests.models import Run
from backtests.playback.run_data import CACHE
from tests.catalog_factories import make_run
from tests.conftest import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    CACHE.clear()
    yield
    CACHE.clear()
    connections.close_all()


@pytest.fixture
def runs():
    """Three DONE runs, finished 30, 20 and 1 days ago."""
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 3))
    dataset = store_bars("AAPL-1m", series, "AAPL").dataset
    made = []
    for age in (30, 20, 1):
        run = make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20})
        assert execute(run.run_id, "test") == "DONE"
        Run.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(days=age))
        made.append(run.run_id)
    return made


def folder(run_id: str) -> Path:
    return Path(django_settings.ARTIFACTS_DIR) / run_id


def test_runs_older_than_the_age_are_pruned_and_keep_their_statistics(runs) -> None:
    report = retention.prune(max_age_days=10, max_bytes=0)
    assert report.runs == runs[:2]
    assert report.bytes_freed > 0
    for run_id in runs[:2]:
        assert not folder(run_id).exists()
        run = Run.objects.get(pk=run_id)
        assert run.artifacts_pruned_at is not None and run.equity_path == ""
        detail = Client().get(f"/backtests/{run_id}").json()
        assert detail["artifacts_pruned_at"] is not None
        assert detail["metrics"]["total_return"] is not None
        assert detail["artifacts"]["equity"] is None
        trades = Client().get(f"/backtests/{run_id}/trades")
        assert trades.status_code == 409
        assert trades.json()["error"]["code"] == "ARTIFACTS_MISSING"
        stream = Client().get(f"/backtests/{run_id}/stream")
        assert stream.status_code == 409 and "retention" in stream.json()["error"]["message"]
    assert folder(runs[2]).is_dir()
    assert retention.prune(max_age_days=10, max_bytes=0).runs == []  # nothing twice


def test_past_the_total_bytes_the_oldest_go_first(runs) -> None:
    one = retention.folder_bytes(folder(runs[0]))
    report = retention.prune(max_age_days=0, max_bytes=int(one * 1.5))
    assert report.runs == runs[:2]
    assert report.bytes_left <= one * 1.5
    assert folder(runs[2]).is_dir()


def test_a_run_marked_as_played_is_kept(runs) -> None:
    retention.mark_played(runs[0])
    report = retention.prune(max_age_days=10, max_bytes=0)
    assert report.runs == [runs[1]] and report.kept_playing == [runs[0]]
    assert folder(runs[0]).is_dir()


async def test_a_socket_playing_a_run_marks_it_as_played(runs) -> None:
    ws = communicator(f"/backtests/{runs[0]}/ws")
    assert (await ws.connect())[0]
    await ws.send_to(text_data=json.dumps({"t": "ctrl", "cmd": "play"}))
    for _ in range(50):
        if (folder(runs[0]) / retention.PLAYED_MARK).exists():
            break
        await ws.receive_from(timeout=5)
    assert (folder(runs[0]) / retention.PLAYED_MARK).exists()
    await ws.disconnect()


def test_the_command_prunes_and_says_what_it_did(runs) -> None:
    out = io.StringIO()
    call_command("prune_artifacts", "--max-age-days", "25", "--dry-run", stdout=out)
    assert f"would prune {runs[0]}" in out.getvalue() and folder(runs[0]).is_dir()
    out = io.StringIO()
    call_command("prune_artifacts", "--max-age-days", "25", stdout=out)
    assert f"pruned {runs[0]}" in out.getvalue() and not folder(runs[0]).exists()
    assert "pruned 1 runs" in out.getvalue()


def test_the_workers_sweep_applies_the_settings(runs, settings) -> None:
    sweeper = Sweeper()
    sweeper.prune()  # retention off by default: nothing goes
    assert all(folder(run_id).is_dir() for run_id in runs)
    settings.ARTIFACTS_MAX_AGE_DAYS = 10
    sweeper.prune()
    assert [folder(run_id).is_dir() for run_id in runs] == [False, False, True]


async def test_a_held_run_is_marked_again_while_it_plays(monkeypatch, settings) -> None:
    import asyncio
    from types import SimpleNamespace

    from backtests.playback import run_data

    monkeypatch.setattr(run_data, "PLAYED_MARK_SECONDS", 0.05)
    folder("run-x").mkdir(parents=True)
    mark = folder("run-x") / retention.PLAYED_MARK
    CACHE.hold(SimpleNamespace(run_id="run-x", nbytes=0))
    for _ in range(100):
        if mark.exists():
            break
        await asyncio.sleep(0.01)
    mark.unlink()
    await asyncio.sleep(0.2)
    assert mark.exists()  # touched again, by the timer
    CACHE.release("run-x")
    assert CACHE.marking is None
