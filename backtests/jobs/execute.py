"""Compute one claimed run with the engine, renewing its lease, and record the outcome.

The task worker and `manage.py run_backtest` both come here, through `execute`.
"""

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections

from backtests.engine import run as engine
from backtests.jobs import lifecycle
from backtests.jobs.time_limit import RunTimedOut, time_limit
from backtests.models import Run

logger = logging.getLogger(__name__)
INTERNAL_ERROR = "internal error while computing the run"


def default_worker_id() -> str:
    """host:pid, unique among the processes sharing the database."""
    return f"{socket.gethostname()}:{os.getpid()}"


def inputs_of(run: Run) -> engine.RunInputs:
    return engine.RunInputs(
        run_id=run.run_id,
        dataset_id=run.dataset_id,
        strategy_id=run.strategy_id,
        params=run.params,
        seed=run.seed,
        slippage_fees=run.slippage_fees,
        strategy_version=run.strategy_version,
    )


class LeaseKeeper(threading.Thread):
    """Renews a lease (a run's, or a sweep chunk's) every third of its length until
    stopped, or until `renew` says the lease is held no longer."""

    def __init__(self, name: str, renew: Callable[[], bool]) -> None:
        super().__init__(name=f"lease-{name}", daemon=True)
        self.renew = renew
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_LEASE_SECONDS / 3):
                if not self.renew():
                    return
        except Exception as exc:  # the sweep requeues the work if the lease lapses
            logger.warning("%s: lease not renewed: %r", self.name, exc)
        finally:
            close_old_connections()

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def execute(run_id: str, worker_id: str | None = None) -> str | None:
    """Claim and compute a QUEUED run; return its final status (None: not claimed).

    Deterministic failures (bad parameters, a dataset without bars) end the run in ERROR
    at once; transient ones (the database) propagate, for the task to retry.
    """
    worker_id = worker_id or default_worker_id()
    # Re-entrant: after a transient error the task calls again for the run it holds.
    if not lifecycle.claim(run_id, worker_id) and not lifecycle.holding(run_id, worker_id).exists():
        return None
    run = Run.objects.select_related("dataset").get(run_id=run_id)
    keeper = LeaseKeeper(run_id, lambda: lifecycle.renew(run_id, worker_id))
    keeper.start()
    try:
        return compute(run, worker_id)
    finally:
        keeper.stop()


def compute(run: Run, worker_id: str) -> str | None:
    """Run the engine for a claimed run and record DONE, ERROR or CANCELLED."""
    run_id = run.run_id
    logger.info("engine run started run_id=%s worker=%s", run_id, worker_id)
    try:
        if not run.dataset.bars_path:
            raise engine.EngineError(f"dataset {run.dataset_id} has no bars (import them first)")
        with time_limit(settings.JOB_RUN_TIMEOUT_SECONDS):
            result = engine.run(
                inputs_of(run),
                Path(settings.DATA_DIR) / run.dataset.bars_path,
                Path(settings.ARTIFACTS_DIR) / run_id,
                run.dataset.bars_sha256,
                should_stop=lambda: lifecycle.should_stop(run_id, worker_id),
                interval=run.dataset.interval,
                tz=run.dataset.tz,
            )
    except RunTimedOut:
        limit = settings.JOB_RUN_TIMEOUT_SECONDS
        lifecycle.finish(
            run_id,
            worker_id,
            Run.Status.ERROR,
            f"the run took longer than its time limit ({limit:g} s, JOB_RUN_TIMEOUT_SECONDS) "
            "and was stopped",
        )
        return Run.Status.ERROR
    except engine.Stopped:
        if lifecycle.finish(run_id, worker_id, Run.Status.CANCELLED):
            return Run.Status.CANCELLED
        return None  # the run was taken from this worker (its lease lapsed)
    except engine.EngineError as exc:
        lifecycle.finish(run_id, worker_id, Run.Status.ERROR, str(exc))
        return Run.Status.ERROR
    except DatabaseError:
        raise  # possibly transient: the task retries
    except Exception:
        # A bug: its traceback goes to the log once, the API says only that it failed.
        logger.exception("run %s failed", run_id)
        lifecycle.finish(run_id, worker_id, Run.Status.ERROR, INTERNAL_ERROR)
        return Run.Status.ERROR
    if lifecycle.finish_done(run_id, worker_id, result):
        return Run.Status.DONE
    # A cancel arrived after the last checkpoint: it wins over the result.
    if lifecycle.finish(run_id, worker_id, Run.Status.CANCELLED):
        return Run.Status.CANCELLED
    return None
