import logging
import os
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django_tasks_db.management.commands.db_worker import Worker

from backtests.jobs import lifecycle, retention
from backtests.jobs.execute import default_worker_id
from backtests.sweeps import lifecycle as sweeps

logger = logging.getLogger("backtests.jobs.worker")


class Sweeper(threading.Thread):
    """Requeues runs and sweep chunks whose worker was lost, and gives a task to QUEUED
    ones without one, every third of a lease; applies artifact retention every
    ARTIFACTS_PRUNE_SECONDS when it is set (any worker does both)."""

    def __init__(self) -> None:
        super().__init__(name="lease-sweeper", daemon=True)
        self.stopped = threading.Event()
        self.next_prune = time.monotonic()

    def run(self) -> None:
        while not self.stopped.wait(settings.JOB_LEASE_SECONDS / 3):
            try:
                lifecycle.requeue_expired()
                lifecycle.requeue_orphans()
                sweeps.requeue_expired()
                sweeps.requeue_orphans()
                self.prune()
            except Exception as exc:  # the next sweep tries again
                logger.warning("lease sweep failed: %r", exc)
            finally:
                close_old_connections()

    def prune(self) -> None:
        """Apply artifact retention, if it is on and its time has come."""
        if not (settings.ARTIFACTS_MAX_AGE_DAYS or settings.ARTIFACTS_MAX_BYTES):
            return
        if time.monotonic() < self.next_prune:
            return
        self.next_prune = time.monotonic() + settings.ARTIFACTS_PRUNE_SECONDS
        report = retention.prune()
        if report.runs:
            logger.info(
                "retention pruned %d runs' artifacts, %d bytes",
                len(report.runs),
                report.bytes_freed,
            )


class Command(BaseCommand):
    help = (
        "Run queued backtests: a django-tasks-db worker, plus the sweep that requeues runs "
        "whose worker was lost. SIGTERM or Ctrl-C: finish the current run, then exit."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval", type=float, default=0.1, help="seconds between polls of an empty queue"
        )
        parser.add_argument("--worker-id", default="", help="default: host:pid")
        parser.add_argument(
            "--nice",
            type=int,
            default=settings.JOB_WORKER_NICE,
            help="CPU priority below the servers' (0: the same)",
        )

    def handle(self, *args, interval: float, worker_id: str, nice: int, **options) -> None:
        """Sweep once, then work until told to stop."""
        worker_id = worker_id or default_worker_id()
        # On a machine shared with servers, a run's computation waits for requests.
        os.nice(nice)
        lifecycle.requeue_expired()
        lifecycle.requeue_orphans()
        sweeps.requeue_expired()
        sweeps.requeue_orphans()
        Sweeper().start()
        worker = Worker(
            queue_names=["default"],
            interval=interval,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )
        worker.configure_signals()
        logger.info("worker %s started (lease %ss)", worker_id, settings.JOB_LEASE_SECONDS)
        worker.run()
