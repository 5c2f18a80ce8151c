"""A run's lifecycle: QUEUED -> RUNNING -> DONE | ERROR | CANCELLED, each move atomic and guarded.

The Run row is the source of truth (the task queue's own rows are plumbing). Every move is
one conditional UPDATE, so that two workers, a cancel and a sweep can race without harm:

- `claim`: QUEUED -> RUNNING for one worker, with a lease and one more attempt.
- `renew`: the worker extends its lease while it computes.
- `finish_*`: only the worker holding the run may finish it; a run whose cancel was asked
  for never becomes DONE.
- `cancel`: QUEUED -> CANCELLED at once; RUNNING gets `cancel_requested`, which the
  worker sees at the engine's next checkpoint (docs/engine.md).
- `requeue_expired`: RUNNING with an expired lease (its worker was killed or lost) ->
  QUEUED, and enqueued again; after JOB_MAX_ATTEMPTS, ERROR.
- `requeue_orphans`: a QUEUED run with no live task (made before tasks were enqueued in
  the run's own transaction, or its task died before claiming it) gets a new task.

A run's task is inserted in the same transaction as the move that queues it (the task
table is in the same database), so that no committed QUEUED run is ever without one. A
second task for a run is harmless: `claim` lets only one of them compute it.

After each move the new status is published to the run's channel-layer group.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from backtests.jobs import status
from backtests.models import Run, RunMetrics
from project import faults

logger = logging.getLogger(__name__)
TERMINAL = (Run.Status.DONE, Run.Status.ERROR, Run.Status.CANCELLED)


def lease_until():
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def enqueue(run_id: str) -> None:
    """Insert the run's task, in the caller's transaction: both commit, or neither."""
    from backtests.jobs.tasks import run_backtest  # the task module imports this one

    faults.point("enqueue")
    run_backtest.enqueue(run_id)


def live_tasks():
    """The run ids (as text) of tasks that will still claim their run."""
    from backtests.jobs.tasks import run_backtest

    return live_task_args(run_backtest)


def live_task_args(task):
    """The first arguments (as text) of a task's tasks that will still claim their work.

    READY tasks, and RUNNING ones younger than a lease: a worker claims the work as soon
    as it starts the task, so an older RUNNING task whose work is still QUEUED died first.
    """
    stale = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    return (
        DBTaskResult.objects.filter(task_path=task.module_path)
        .filter(
            Q(status=TaskResultStatus.READY)
            | Q(status=TaskResultStatus.RUNNING, started_at__gte=stale)
        )
        .values(run=KT("args_kwargs__args__0"))
    )


def ensure_task(run_id: str) -> bool:
    """Give a QUEUED run without a live task a new one; True if it needed one."""
    with transaction.atomic():
        orphan = (
            Run.objects.filter(run_id=run_id, status=Run.Status.QUEUED)
            .exclude(run_id__in=live_tasks())
            .exists()
        )
        if orphan:
            enqueue(run_id)
    if orphan:
        logger.warning("run %s was QUEUED without a task: enqueued again", run_id)
    return orphan


def requeue_orphans() -> list[str]:
    """Enqueue again every QUEUED run that has no live task."""
    orphans = list(
        Run.objects.filter(status=Run.Status.QUEUED)
        .exclude(run_id__in=live_tasks())
        .values_list("run_id", flat=True)
    )
    return [run_id for run_id in orphans if ensure_task(run_id)]


def claim(run_id: str, worker_id: str) -> bool:
    """QUEUED -> RUNNING for this worker; False if the run is not (or no longer) QUEUED."""
    now = timezone.now()
    claimed = Run.objects.filter(run_id=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        worker_id=worker_id,
        lease_expires_at=lease_until(),
        started_at=now,
        finished_at=None,
        attempts=F("attempts") + 1,
        error="",
    )
    if claimed:
        status.publish(run_id, Run.Status.RUNNING)
    return bool(claimed)


def holding(run_id: str, worker_id: str):
    """The run, if this worker holds it (RUNNING under its lease)."""
    return Run.objects.filter(run_id=run_id, status=Run.Status.RUNNING, worker_id=worker_id)


def renew(run_id: str, worker_id: str) -> bool:
    """Extend this worker's lease; False if it holds the run no longer."""
    return bool(holding(run_id, worker_id).update(lease_expires_at=lease_until()))


def should_stop(run_id: str, worker_id: str) -> bool:
    """Whether the worker should stop computing: a cancel was asked, or it lost the run."""
    return not holding(run_id, worker_id).filter(cancel_requested=False).exists()


def finished_fields(run: Run) -> dict:
    now = timezone.now()
    started = run.started_at or now
    return {
        "finished_at": now,
        "duration_ms": round((now - started).total_seconds() * 1000),
        "lease_expires_at": None,
    }


def finish_done(run_id: str, worker_id: str, result) -> bool:
    """RUNNING -> DONE with metrics and artifact paths; never over a cancel or a lost lease."""
    with transaction.atomic():
        run = holding(run_id, worker_id).filter(cancel_requested=False).first()
        if run is None:
            return False
        fields = finished_fields(run)
        fields.update(
            status=Run.Status.DONE,
            code_hash=result.code_hash,
            bars_sha256=result.bars_sha256,
            error="",
        )
        for key, path in result.artifacts.items():
            # Relative to ARTIFACTS_DIR, which machines may mount elsewhere.
            fields[f"{key}_path"] = f"{run_id}/{path.name}"
        updated = holding(run_id, worker_id).filter(cancel_requested=False).update(**fields)
        if not updated:
            return False
        RunMetrics.objects.update_or_create(
            run_id=run_id, defaults={**result.metrics, "computed_at": timezone.now()}
        )
        transaction.on_commit(lambda: status.publish(run_id, Run.Status.DONE))
    return True


def finish(run_id: str, worker_id: str, new_status: str, error: str = "") -> bool:
    """RUNNING -> ERROR or CANCELLED, if this worker still holds the run."""
    with transaction.atomic():
        run = holding(run_id, worker_id).first()
        if run is None:
            return False
        fields = finished_fields(run)
        updated = holding(run_id, worker_id).update(status=new_status, error=error, **fields)
        if updated:
            RunMetrics.objects.filter(run_id=run_id).delete()
            transaction.on_commit(lambda: status.publish(run_id, new_status))
    return bool(updated)


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: the run's status after it, or why it could not."""

    found: bool
    status: str = ""
    cancel_requested: bool = False
    moved: bool = False  # this call changed the run (a repeat changes nothing)


def cancel(run_id: str) -> CancelOutcome:
    """Cancel a QUEUED run at once; ask a RUNNING one to stop; leave a finished one."""
    now = timezone.now()
    with transaction.atomic():
        if Run.objects.filter(run_id=run_id, status=Run.Status.QUEUED).update(
            status=Run.Status.CANCELLED, finished_at=now, cancel_requested=True
        ):
            transaction.on_commit(lambda: status.publish(run_id, Run.Status.CANCELLED))
            return CancelOutcome(True, Run.Status.CANCELLED, True, moved=True)
        if Run.objects.filter(run_id=run_id, status=Run.Status.RUNNING).update(
            cancel_requested=True
        ):
            return CancelOutcome(True, Run.Status.RUNNING, True, moved=True)
        run = Run.objects.filter(run_id=run_id).values("status", "cancel_requested").first()
    if run is None:
        return CancelOutcome(False)
    return CancelOutcome(True, run["status"], run["cancel_requested"])


def rerun(run_id: str, queue: bool = True) -> bool:
    """A finished run (DONE, ERROR, CANCELLED) back to QUEUED, and enqueued if `queue`."""
    with transaction.atomic():
        updated = Run.objects.filter(run_id=run_id, status__in=TERMINAL).update(
            status=Run.Status.QUEUED,
            cancel_requested=False,
            error="",
            attempts=0,
            started_at=None,
            finished_at=None,
            worker_id="",
        )
        if updated and queue:
            enqueue(run_id)
        if updated:
            transaction.on_commit(lambda: status.publish(run_id, Run.Status.QUEUED))
    return bool(updated)


def requeue_expired() -> list[str]:
    """Requeue every RUNNING run whose lease expired; fail those out of attempts."""
    now = timezone.now()
    expired = list(
        Run.objects.filter(status=Run.Status.RUNNING)
        .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
        .values_list("run_id", "attempts", "lease_expires_at", "cancel_requested")
    )
    moved = []
    for run_id, attempts, lease, cancel_requested in expired:
        with transaction.atomic():
            same = Run.objects.filter(
                run_id=run_id, status=Run.Status.RUNNING, lease_expires_at=lease
            )
            if cancel_requested:
                new_status, error = Run.Status.CANCELLED, ""
            elif attempts >= settings.JOB_MAX_ATTEMPTS:
                new_status = Run.Status.ERROR
                error = (
                    f"the worker computing this run stopped {attempts} times "
                    "(killed or lost); not retried again"
                )
            else:
                new_status, error = Run.Status.QUEUED, ""
            fields = {"status": new_status, "error": error, "worker_id": ""}
            if new_status != Run.Status.QUEUED:
                fields.update(finished_at=now, lease_expires_at=None)
            if not same.update(**fields):
                continue
            if new_status == Run.Status.QUEUED:
                enqueue(run_id)
            transaction.on_commit(lambda r=run_id, s=new_status: status.publish(r, s))
        logger.warning(
            "run %s lost its worker (lease expired, attempt %d): now %s",
            run_id,
            attempts,
            new_status,
        )
        moved.append(run_id)
    return moved
