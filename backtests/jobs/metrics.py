"""Job metrics for Prometheus, from the database: the same figures whichever process is
scraped, however many workers there are (no multiprocess collector to set up).

`backtests_runs{status}` (runs by status), `backtests_queue_depth` (QUEUED runs),
`backtests_run_duration_seconds` (a histogram over finished runs) and
`backtests_run_retries_total` (claims beyond each run's first: runs requeued after a lost
worker). A scrape never queries: it reads a snapshot that a thread refreshes when it is
older than REFRESH_SECONDS, so /metrics stays off the database and off the event loop.
"""

import logging
import threading
import time

from django.db import close_old_connections
from django.db.models import Count, Q, Sum
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from backtests.models import Run

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
FINAL = (Run.Status.DONE, Run.Status.ERROR, Run.Status.CANCELLED)


def snapshot() -> dict:
    """The figures, in three queries."""
    by_status = dict(
        Run.objects.order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    buckets = {
        f"le_{i}": Count("pk", filter=Q(duration_ms__lte=bound * 1000))
        for i, bound in enumerate(DURATION_BUCKETS)
    }
    durations = Run.objects.filter(status__in=FINAL, duration_ms__isnull=False).aggregate(
        count=Count("pk"), total_ms=Sum("duration_ms"), **buckets
    )
    retries = Run.objects.filter(attempts__gt=1).aggregate(n=Sum("attempts") - Count("pk"))["n"]
    return {"by_status": by_status, "durations": durations, "retries": retries or 0}


class JobsCollector(Collector):
    """Serves the latest snapshot; refreshes it in a thread when it is stale."""

    def __init__(self) -> None:
        self.latest: dict | None = None
        self.taken_at = 0.0
        self.refreshing = threading.Lock()

    def refresh(self) -> None:
        """Take a new snapshot (in the calling thread)."""
        try:
            self.latest = snapshot()
            self.taken_at = time.monotonic()
        except Exception as exc:  # no database here (yet): the figures wait
            logger.debug("job metrics not refreshed: %r", exc)
        finally:
            close_old_connections()

    def refresh_in_background(self) -> None:
        if time.monotonic() - self.taken_at < REFRESH_SECONDS:
            return
        if self.refreshing.acquire(blocking=False):

            def work() -> None:
                try:
                    self.refresh()
                finally:
                    self.refreshing.release()

            threading.Thread(target=work, name="job-metrics", daemon=True).start()

    def describe(self):
        """The families' names, without figures: registering the collector (in `ready()`)
        must not reach the database, as a first `collect()` would."""
        yield GaugeMetricFamily("backtests_runs", "Runs by status", labels=["status"])
        yield GaugeMetricFamily("backtests_queue_depth", "Runs waiting for a worker (QUEUED)")
        yield HistogramMetricFamily(
            "backtests_run_duration_seconds",
            "Time from a worker's claim to the run's end, over finished runs",
        )
        yield CounterMetricFamily(
            "backtests_run_retries",
            "Claims beyond each run's first (requeued after a lost worker)",
        )

    def collect(self):
        """The metric families of the latest snapshot (none before the first)."""
        self.refresh_in_background()
        latest = self.latest
        if latest is None:
            return
        runs = GaugeMetricFamily("backtests_runs", "Runs by status", labels=["status"])
        for status in Run.Status.values:
            runs.add_metric([status], latest["by_status"].get(status, 0))
        yield runs
        yield GaugeMetricFamily(
            "backtests_queue_depth",
            "Runs waiting for a worker (QUEUED)",
            value=latest["by_status"].get(Run.Status.QUEUED, 0),
        )
        durations = latest["durations"]
        yield HistogramMetricFamily(
            "backtests_run_duration_seconds",
            "Time from a worker's claim to the run's end, over finished runs",
            buckets=[
                *((str(bound), durations[f"le_{i}"]) for i, bound in enumerate(DURATION_BUCKETS)),
                ("+Inf", durations["count"]),
            ],
            sum_value=(durations["total_ms"] or 0) / 1000,
        )
        yield CounterMetricFamily(
            "backtests_run_retries",
            "Claims beyond each run's first (requeued after a lost worker)",
            value=latest["retries"],
        )


COLLECTOR = JobsCollector()
