"""Artifact retention: finished runs' folders pruned by age and by total size, oldest
first, never a run being played (docs/operations.md#artifact-retention).

A run's statistics stay in the catalog; its files (equity, fills, orders: what playback,
/trades and /equity read) go, and the run says when (`artifacts_pruned_at`): playing it
is then 409 ARTIFACTS_MISSING until `manage.py run_backtest <id> --force` computes it
again. Servers touch a `.played` file in the folder of each run they play, at the start
and every minute while it plays; a run touched within PLAYED_GRACE is kept, on whichever
machine it plays (ARTIFACTS_DIR is shared storage).
"""

import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from backtests.models import Run

logger = logging.getLogger(__name__)

PLAYED_MARK = ".played"
PLAYED_GRACE = timedelta(minutes=5)
FINISHED = (Run.Status.DONE, Run.Status.ERROR, Run.Status.CANCELLED)


@dataclass
class Pruned:
    """What a prune removed (or, dry, would remove)."""

    runs: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    bytes_left: int = 0
    kept_playing: list[str] = field(default_factory=list)


def folder_bytes(folder: Path) -> int:
    """The bytes of the files directly in a run's folder."""
    try:
        return sum(entry.stat().st_size for entry in Path(folder).iterdir() if entry.is_file())
    except FileNotFoundError:
        return 0


def mark_played(run_id: str) -> None:
    """Say that a server plays the run now (blocking: call it in a thread)."""
    folder = Path(settings.ARTIFACTS_DIR) / run_id
    if folder.is_dir():
        (folder / PLAYED_MARK).touch()


def played_recently(folder: Path, now: float) -> bool:
    """Whether a server marked the run as played within PLAYED_GRACE."""
    try:
        return now - (folder / PLAYED_MARK).stat().st_mtime < PLAYED_GRACE.total_seconds()
    except FileNotFoundError:
        return False


def prune(
    max_age_days: float | None = None, max_bytes: int | None = None, dry_run: bool = False
) -> Pruned:
    """Remove finished runs' folders older than `max_age_days`, then the oldest others
    while all runs' folders hold more than `max_bytes` (None: the settings; 0: no limit)."""
    max_age_days = settings.ARTIFACTS_MAX_AGE_DAYS if max_age_days is None else max_age_days
    max_bytes = settings.ARTIFACTS_MAX_BYTES if max_bytes is None else max_bytes
    base = Path(settings.ARTIFACTS_DIR)
    rows = list(
        Run.objects.filter(status__in=FINISHED, artifacts_pruned_at__isnull=True)
        .exclude(manifest_path="")
        .order_by("finished_at", "created_at", "run_id")
        .values_list("run_id", "finished_at", "created_at")
    )
    sizes = {run_id: folder_bytes(base / run_id) for run_id, _, _ in rows}
    total = sum(folder_bytes(entry) for entry in base.iterdir()) if base.is_dir() else 0
    cutoff = timezone.now() - timedelta(days=max_age_days) if max_age_days > 0 else None
    now = time.time()
    report = Pruned()
    for run_id, finished_at, created_at in rows:
        too_old = cutoff is not None and (finished_at or created_at) < cutoff
        too_big = max_bytes > 0 and total > max_bytes
        if not (too_old or too_big):
            continue
        if played_recently(base / run_id, now):
            report.kept_playing.append(run_id)
            continue
        if not dry_run:
            remove(run_id, base / run_id)
        report.runs.append(run_id)
        report.bytes_freed += sizes[run_id]
        total -= sizes[run_id]
    report.bytes_left = total
    return report


def remove(run_id: str, folder: Path) -> None:
    """Mark the run pruned, then delete its folder (a crash between leaves a folder that
    the next prune's size count still sees, never a run pointing at nothing unmarked)."""
    Run.objects.filter(pk=run_id).update(
        artifacts_pruned_at=timezone.now(),
        metrics_path="",
        equity_path="",
        orders_path="",
        fills_path="",
        manifest_path="",
    )
    shutil.rmtree(folder, ignore_errors=True)
    logger.info("artifacts of run %s pruned", run_id)
