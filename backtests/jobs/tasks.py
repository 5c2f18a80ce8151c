"""The task the queue runs: compute one run, retrying transient database errors."""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django_tasks import task

from backtests.jobs.execute import execute

logger = logging.getLogger(__name__)

# Transient: the database was locked, restarted or unreachable for a moment.
TRANSIENT = (OperationalError, InterfaceError)
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)


def retrying(work: Callable[[], Any], label: str) -> Any:
    """work(), called again after a transient database error (at most RETRY_DELAYS times)."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None), start=1):
        try:
            return work()
        except TRANSIENT as exc:
            if delay is None:
                raise  # out of retries: the lease lapses and the sweep requeues the work
            logger.warning(
                "%s: transient database error (try %d), retrying in %.1f s: %r",
                label,
                attempt,
                delay,
                exc,
            )
            close_old_connections()
            time.sleep(delay)
        except DatabaseError:
            raise
    return None


@task()
def run_backtest(run_id: str) -> str | None:
    """Compute a queued run; a run that is no longer QUEUED is left as it is."""
    return retrying(lambda: execute(run_id), f"run {run_id}")
