"""The run lifecycle: guarded moves, leases, cancels, retries (backtests/jobs/)."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from backtests.catalog.bars_import import store_bars
from backtests.engine import run as engine
from backtests.engine import synthetic
from backtests.jobs import execute as execute_module
from backtests.jobs import lifecycle, tasks
from backtests.jobs.execute import execute
from backtests.models import Run, RunMetrics
from tests.catalog_factories import make_dataset, make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dataset():
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 31))
    return store_bars("AAPL-1m", series, "AAPL").dataset


@pytest.fixture
def queued(dataset) -> Run:
    return make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20})


def queued_tasks(run_id: str) -> int:
    return DBTaskResult.objects.filter(args_kwargs__args=[run_id], status="READY").count()


def test_a_run_is_claimed_once(queued: Run) -> None:
    assert lifecycle.claim(queued.run_id, "w1")
    assert not lifecycle.claim(queued.run_id, "w2")
    queued.refresh_from_db()
    assert (queued.status, queued.worker_id, queued.attempts) == ("RUNNING", "w1", 1)
    assert queued.lease_expires_at > timezone.now() and queued.started_at is not None


def test_execute_computes_to_done_once(queued: Run) -> None:
    assert execute(queued.run_id, "w1") == "DONE"
    assert execute(queued.run_id, "w2") is None  # no longer QUEUED: not computed again
    queued.refresh_from_db()
    assert queued.status == "DONE" and queued.finished_at >= queued.started_at
    assert queued.duration_ms >= 0 and RunMetrics.objects.filter(run=queued).exists()
    assert queued.lease_expires_at is None


def test_a_deterministic_failure_is_an_error_at_once(dataset) -> None:
    run = make_run(dataset, status="QUEUED", strategy_id="nope", params={})
    assert execute(run.run_id, "w1") == "ERROR"
    run.refresh_from_db()
    assert run.status == "ERROR" and "unknown strategy 'nope'" in run.error
    assert run.attempts == 1 and "Traceback" not in run.error


def test_cancelling_a_queued_run_is_immediate_and_it_never_runs(queued: Run) -> None:
    outcome = lifecycle.cancel(queued.run_id)
    assert (outcome.status, outcome.cancel_requested) == ("CANCELLED", True)
    assert execute(queued.run_id, "w1") is None
    queued.refresh_from_db()
    assert queued.status == "CANCELLED" and queued.attempts == 0


def test_a_running_run_stops_at_the_next_checkpoint(queued: Run, monkeypatch, settings) -> None:
    real_run = engine.run

    def cancel_midway(*args, **kwargs):
        lifecycle.cancel(queued.run_id)  # arrives while the engine computes
        return real_run(*args, **kwargs)

    monkeypatch.setattr(execute_module.engine, "run", cancel_midway)
    assert execute(queued.run_id, "w1") == "CANCELLED"
    queued.refresh_from_db()
    assert queued.status == "CANCELLED" and not RunMetrics.objects.filter(run=queued).exists()
    assert not (Path(settings.ARTIFACTS_DIR) / queued.run_id).exists()  # nothing written


def test_a_cancel_after_the_last_checkpoint_still_wins(queued: Run, monkeypatch) -> None:
    real_run = engine.run

    def cancel_after(*args, **kwargs):
        result = real_run(*args, **kwargs)
        lifecycle.cancel(queued.run_id)
        return result

    monkeypatch.setattr(execute_module.engine, "run", cancel_after)
    assert execute(queued.run_id, "w1") == "CANCELLED"
    queued.refresh_from_db()
    assert queued.status == "CANCELLED"


def test_a_finished_run_cannot_be_cancelled(queued: Run) -> None:
    execute(queued.run_id, "w1")
    outcome = lifecycle.cancel(queued.run_id)
    assert (outcome.found, outcome.status) == (True, "DONE")
    assert not lifecycle.cancel("nope").found


def expire(run_id: str) -> None:
    Run.objects.filter(run_id=run_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_an_expired_lease_is_requeued_and_the_lost_worker_cannot_finish(queued: Run) -> None:
    assert lifecycle.claim(queued.run_id, "killed")
    expire(queued.run_id)
    assert lifecycle.requeue_expired() == [queued.run_id]
    queued.refresh_from_db()
    assert (queued.status, queued.worker_id) == ("QUEUED", "")
    assert queued_tasks(queued.run_id) == 1
    # The lost worker comes back: it holds nothing, so it can record nothing.
    assert not lifecycle.renew(queued.run_id, "killed")
    assert lifecycle.finish(queued.run_id, "killed", "ERROR", "late") is False
    assert execute(queued.run_id, "w2") == "DONE"
    queued.refresh_from_db()
    assert queued.attempts == 2


def test_a_run_that_loses_its_worker_three_times_fails(queued: Run, settings) -> None:
    for attempt in range(settings.JOB_MAX_ATTEMPTS):
        assert lifecycle.claim(queued.run_id, f"killed-{attempt}")
        expire(queued.run_id)
        lifecycle.requeue_expired()
    queued.refresh_from_db()
    assert queued.status == "ERROR" and "stopped 3 times" in queued.error


def test_a_live_lease_is_left_alone(queued: Run) -> None:
    lifecycle.claim(queued.run_id, "w1")
    assert lifecycle.requeue_expired() == []
    assert lifecycle.renew(queued.run_id, "w1")


def test_transient_database_errors_are_retried(queued: Run, monkeypatch) -> None:
    real_run = engine.run
    failures = iter([OperationalError("database is locked"), OperationalError("gone")])

    def flaky(*args, **kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return real_run(*args, **kwargs)

    monkeypatch.setattr(execute_module.engine, "run", flaky)
    monkeypatch.setattr(tasks, "RETRY_DELAYS", (0, 0, 0))
    assert tasks.run_backtest.call(queued.run_id) == "DONE"
    queued.refresh_from_db()
    assert queued.status == "DONE" and queued.attempts == 1


def test_a_post_enqueues_the_run_once(api, dataset) -> None:
    from tests.catalog_factories import CREATE_BODY

    response = api.post("/backtests", {**CREATE_BODY, "dataset_id": "AAPL-1m"})
    assert queued_tasks(response.data["run_id"]) == 1
    again = api.post("/backtests", {**CREATE_BODY, "dataset_id": "AAPL-1m"})
    assert again.data["status"] == "EXISTS"
    assert queued_tasks(response.data["run_id"]) == 1


def test_a_failed_enqueue_leaves_no_run_behind(api, dataset, monkeypatch) -> None:
    from tests.catalog_factories import CREATE_BODY

    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(DatabaseBackend, "_task_to_db_task", lost)  # the task's INSERT
    response = api.post("/backtests", {**CREATE_BODY, "dataset_id": "AAPL-1m"})
    assert response.status_code == 503 and response.data["error"]["code"] == "BUSY"
    assert response["Retry-After"] == "1"
    # The run and its task commit together or not at all: nothing is left QUEUED.
    assert not Run.objects.exists() and not DBTaskResult.objects.exists()
    monkeypatch.undo()
    retry = api.post("/backtests", {**CREATE_BODY, "dataset_id": "AAPL-1m"})
    assert retry.status_code == 202 and queued_tasks(retry.data["run_id"]) == 1


def test_a_queued_run_without_a_task_gets_one_from_the_sweep(queued: Run) -> None:
    # make_run inserts the row alone, like a server killed between the two before #17.
    assert queued_tasks(queued.run_id) == 0
    assert lifecycle.requeue_orphans() == [queued.run_id]
    assert queued_tasks(queued.run_id) == 1
    assert lifecycle.requeue_orphans() == []  # its task is READY: nothing more to do
    assert execute(queued.run_id, "w1") == "DONE"
    assert lifecycle.requeue_orphans() == []  # DONE runs are not the sweep's


def test_a_task_that_died_before_claiming_its_run_is_replaced(queued: Run, settings) -> None:
    lifecycle.enqueue(queued.run_id)
    task = DBTaskResult.objects.get()
    task.claim("killed-worker")  # RUNNING, then the worker died before it claimed the run
    assert lifecycle.requeue_orphans() == []  # a lease's grace: it may still be claiming
    DBTaskResult.objects.filter(pk=task.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    )
    assert lifecycle.requeue_orphans() == [queued.run_id]
    assert queued_tasks(queued.run_id) == 1


def test_a_repeat_post_of_a_run_left_without_a_task_requeues_it(api, dataset) -> None:
    from tests.catalog_factories import CREATE_BODY

    body = {**CREATE_BODY, "dataset_id": "AAPL-1m"}
    run_id = api.post("/backtests", body).data["run_id"]
    DBTaskResult.objects.all().delete()  # the task lost, as a kill between the two did
    again = api.post("/backtests", body)
    assert (again.status_code, again.data) == (200, {"run_id": run_id, "status": "EXISTS"})
    assert queued_tasks(run_id) == 1
    assert api.post("/backtests", body).status_code == 200
    assert queued_tasks(run_id) == 1  # one task is enough: no more on further repeats


def test_rerun_queues_a_finished_run_again(queued: Run) -> None:
    execute(queued.run_id, "w1")
    assert lifecycle.rerun(queued.run_id)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("QUEUED", 0)
    assert queued_tasks(queued.run_id) == 1
    assert not lifecycle.rerun(queued.run_id)  # QUEUED already


def test_a_run_without_bars_fails_with_a_message(db) -> None:
    run = make_run(make_dataset("EMPTY-1m"), status="QUEUED")
    assert execute(run.run_id, "w1") == "ERROR"
    run.refresh_from_db()
    assert "has no bars" in run.error


def test_a_run_whose_bars_file_is_gone_names_it_without_the_servers_paths(
    dataset, settings
) -> None:
    run = make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20})
    (Path(settings.DATA_DIR) / dataset.bars_path).unlink()
    assert execute(run.run_id, "w1") == "ERROR"
    run.refresh_from_db()
    assert f"has no bars file ({dataset.bars_path} is not in the data folder)" in run.error
    assert str(settings.DATA_DIR) not in run.error and "/" not in run.error


def test_cancel_api_cancels_a_queued_run_at_once(api, queued: Run) -> None:
    response = api.post(f"/backtests/{queued.run_id}/cancel", None, raw=True)
    assert response.status_code == 200
    assert response.data == {
        "run_id": queued.run_id,
        "status": "CANCELLED",
        "cancel_requested": True,
    }
    detail = api.get(f"/backtests/{queued.run_id}").data
    assert detail["status"] == "CANCELLED" and detail["finished_at"] is not None


def test_cancel_api_asks_a_running_run_to_stop(api, queued: Run) -> None:
    lifecycle.claim(queued.run_id, "w1")
    for _ in range(2):  # asking again is the same answer
        response = api.post(f"/backtests/{queued.run_id}/cancel", None, raw=True)
        assert response.status_code == 202
        assert response.data["status"] == "RUNNING"
    assert lifecycle.should_stop(queued.run_id, "w1")


@pytest.mark.parametrize("final", ["DONE", "ERROR", "CANCELLED"])
def test_cancel_api_refuses_a_finished_run(api, dataset, final: str) -> None:
    run = make_run(dataset, status=final)
    response = api.post(f"/backtests/{run.run_id}/cancel", None, raw=True)
    assert response.status_code == 409
    assert response.data["error"]["code"] == "CONFLICT"
    assert response.data["error"]["details"] == {"status": final}


def test_cancel_api_names_an_unknown_run(api, db) -> None:
    response = api.post("/backtests/nope/cancel", None, raw=True)
    assert response.status_code == 404
    assert response.data["error"]["code"] == "RUN_NOT_FOUND"


def test_cancel_api_is_post_only(api, queued: Run) -> None:
    assert api.call("GET", f"/backtests/{queued.run_id}/cancel").status_code == 405


def test_a_bug_is_logged_once_and_the_run_fails_without_a_traceback(
    queued: Run, monkeypatch, caplog
) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(execute_module.engine, "run", broken)
    assert execute(queued.run_id, "w1") == "ERROR"
    queued.refresh_from_db()
    assert queued.error == "internal error while computing the run"
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and "a bug" in str(logged[0].exc_info[1])
