"""The job metrics on /metrics: runs by status, queue depth, durations, retries."""

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from backtests.jobs.metrics import COLLECTOR, JobsCollector
from tests.catalog_factories import make_dataset, make_run
from tests.live_server import ROOT, service_env

pytestmark = pytest.mark.django_db


def test_job_metrics_come_from_the_database() -> None:
    dataset = make_dataset()
    for status, duration_ms, attempts in [
        ("QUEUED", None, 0),
        ("QUEUED", None, 0),
        ("RUNNING", None, 1),
        ("DONE", 400, 1),
        ("DONE", 3_000, 2),
        ("ERROR", 50, 3),
    ]:
        make_run(dataset, status=status, duration_ms=duration_ms, attempts=attempts)
    COLLECTOR.refresh()
    text = generate_latest().decode()
    assert 'backtests_runs{status="QUEUED"} 2.0' in text
    assert 'backtests_runs{status="CANCELLED"} 0.0' in text
    assert "backtests_queue_depth 2.0" in text
    assert 'backtests_run_duration_seconds_bucket{le="0.1"} 1.0' in text
    assert 'backtests_run_duration_seconds_bucket{le="0.5"} 2.0' in text
    assert 'backtests_run_duration_seconds_bucket{le="+Inf"} 3.0' in text
    assert "backtests_run_duration_seconds_sum 3.45" in text
    assert "backtests_run_retries_total 3.0" in text  # (2 - 1) + (3 - 1)


def test_a_scrape_never_waits_for_the_database(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(COLLECTOR, "taken_at", 0.0)
    monkeypatch.setattr(COLLECTOR, "refresh", lambda: calls.append("refresh"))
    list(COLLECTOR.collect())
    COLLECTOR.refreshing.acquire()  # the background refresh has finished when it is free
    COLLECTOR.refreshing.release()
    assert calls == ["refresh"]


def test_registering_the_collector_reads_no_database(monkeypatch) -> None:
    collector = JobsCollector()
    calls = []
    monkeypatch.setattr(collector, "refresh", lambda: calls.append("refresh"))
    CollectorRegistry(auto_describe=True).register(collector)  # as ready() does
    assert calls == [] and collector.latest is None


def test_ordinary_commands_do_not_touch_the_database_at_start_up(tmp_path) -> None:
    for command in (["migrate", "--no-input"], ["check"]):
        result = subprocess.run(
            [sys.executable, "-W", "always", "manage.py", *command],
            cwd=ROOT,
            env=service_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "during app initialization" not in result.stderr
