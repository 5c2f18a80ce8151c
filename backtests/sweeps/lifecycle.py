"""A sweep's lifecycle, chunk by chunk: each move one guarded UPDATE, as a run's are
(backtests/jobs/lifecycle.py).

- A sweep is QUEUED with its chunks, each chunk's task inserted in the same transaction.
- `claim`: a chunk QUEUED -> RUNNING for one worker under a lease (the sweep RUNNING too).
- `finish_done`: the chunk's results, its DONE and the sweep's progress and best, in one
  transaction, only by the worker holding the chunk: a chunk computed twice (its first
  worker lost its lease) records its results once. The last chunk makes the sweep DONE.
- `fail`: a chunk that cannot be computed makes its sweep ERROR and cancels the rest.
- `cancel`: the sweep is CANCELLED at once, its QUEUED chunks too; a RUNNING chunk
  stops at its next variant (`should_stop`) and records nothing.
- `requeue_expired` and `requeue_orphans`: a lost worker's chunk is QUEUED and enqueued
  again (after JOB_MAX_ATTEMPTS, the sweep is ERROR); a QUEUED chunk without a live task
  gets one. The workers' sweeper calls both.

Progress is read from the Sweep row (`done`, `best`): GET /sweeps/<id> and its event
stream (views.py), which follows the row, in any server process.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Q
from django.db.models.functions import Cast
from django.utils import timezone

from backtests.engine.sweep import Outcome, best
from backtests.jobs.lifecycle import live_task_args
from backtests.models import RunStatus, Sweep, SweepChunk, SweepResult

logger = logging.getLogger(__name__)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def lease_until():
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def enqueue(chunk_id: int) -> None:
    """Insert the chunk's task, in the caller's transaction."""
    from backtests.sweeps.tasks import run_sweep_chunk

    run_sweep_chunk.enqueue(chunk_id)


def claim(chunk_id: int, worker_id: str) -> bool:
    """QUEUED -> RUNNING for this worker, while its sweep is active and not cancelled."""
    with transaction.atomic():
        claimed = SweepChunk.objects.filter(
            pk=chunk_id,
            status=RunStatus.QUEUED,
            sweep__status__in=ACTIVE,
            sweep__cancel_requested=False,
        ).update(
            status=RunStatus.RUNNING,
            worker_id=worker_id,
            lease_expires_at=lease_until(),
            attempts=F("attempts") + 1,
        )
        if not claimed:
            return False
        sweep_id = SweepChunk.objects.values_list("sweep_id", flat=True).get(pk=chunk_id)
        Sweep.objects.filter(pk=sweep_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=timezone.now()
        )
    return True


def holding(chunk_id: int, worker_id: str):
    """The chunk, if this worker holds it (RUNNING under its lease)."""
    return SweepChunk.objects.filter(pk=chunk_id, status=RunStatus.RUNNING, worker_id=worker_id)


def renew(chunk_id: int, worker_id: str) -> bool:
    """Extend this worker's lease; False if it holds the chunk no longer."""
    return bool(holding(chunk_id, worker_id).update(lease_expires_at=lease_until()))


def should_stop(chunk_id: int, worker_id: str) -> bool:
    """Whether to stop computing: the sweep ended (a cancel, another chunk's error), or
    the worker lost the chunk."""
    return not holding(chunk_id, worker_id).filter(sweep__status=RunStatus.RUNNING).exists()


def result_row(sweep_id: str, outcome: Outcome) -> SweepResult:
    """A variant's outcome as its results row."""
    figures = outcome.metrics or {}
    return SweepResult(
        sweep_id=sweep_id,
        variant=outcome.index,
        params=outcome.params,
        fills=outcome.fills,
        error=outcome.error,
        **{name: figures.get(name) for name in SweepResult.FIELDS},
    )


def finish_done(chunk_id: int, worker_id: str, outcomes: list[Outcome], maximize: str) -> bool:
    """RUNNING -> DONE with its results; the sweep's progress and best; the sweep DONE
    when it was the last chunk. False (nothing written) if the worker lost the chunk or
    the sweep was cancelled."""
    with transaction.atomic():
        held = holding(chunk_id, worker_id).filter(sweep__status=RunStatus.RUNNING)
        sweep_id = held.values_list("sweep_id", flat=True).first()
        if sweep_id is None or not held.update(status=RunStatus.DONE, lease_expires_at=None):
            return False
        SweepResult.objects.bulk_create([result_row(sweep_id, o) for o in outcomes])
        Sweep.objects.filter(pk=sweep_id).update(done=F("done") + len(outcomes))
        record_best(sweep_id, outcomes, maximize)
        complete(sweep_id)
    return True


def record_best(sweep_id: str, outcomes: list[Outcome], maximize: str) -> None:
    """Make the chunk's best the sweep's if it beats the best so far (ties: the lower
    grid number), in one conditional UPDATE, whatever order the chunks finish in."""
    top = best(outcomes, maximize)
    if top is None:
        return
    value = top.metrics[maximize]
    Sweep.objects.filter(pk=sweep_id).filter(
        Q(best_value__isnull=True)
        | Q(best_value__lt=value)
        | Q(best_value=value, best_variant__gt=top.index)
    ).update(
        best_value=value,
        best_variant=top.index,
        best={"variant": top.index, "params": top.params, "metrics": top.metrics},
    )


def complete(sweep_id: str) -> bool:
    """RUNNING -> DONE once every chunk is DONE."""
    unfinished = SweepChunk.objects.filter(sweep=OuterRef("pk")).exclude(status=RunStatus.DONE)
    return bool(
        Sweep.objects.filter(pk=sweep_id, status=RunStatus.RUNNING)
        .filter(~Exists(unfinished))
        .update(status=RunStatus.DONE, finished_at=timezone.now())
    )


def finish_window(chunk_id: int, worker_id: str, window: dict) -> tuple[str, bool]:
    """Record a walk-forward window's summary (in place of an earlier one of the same
    window: a chunk computed twice is recorded once). (sweep id, last): when every other
    chunk is DONE, this one stays RUNNING for the caller to stitch the out-of-sample run
    and `finish_stitched` (if the worker dies meanwhile, its lease lapses and the window
    is computed again); otherwise it is DONE. LostChunk if the worker holds it no longer.

    The sweep's row is locked first (SQLite's transactions are IMMEDIATE), so that of two
    windows finishing at once exactly one sees itself last."""
    with transaction.atomic():
        held = holding(chunk_id, worker_id).filter(sweep__status=RunStatus.RUNNING)
        sweep_id = held.values_list("sweep_id", flat=True).first()
        if sweep_id is None:
            raise LostChunk(chunk_id)
        sweep = Sweep.objects.select_for_update().get(pk=sweep_id)
        kept = [w for w in sweep.windows if w["window"] != window["window"]]
        sweep.windows = sorted([*kept, window], key=lambda w: w["window"])
        sweep.done = len(sweep.windows)
        sweep.save(update_fields=["windows", "done"])
        others = SweepChunk.objects.filter(sweep_id=sweep_id).exclude(pk=chunk_id)
        last = not others.exclude(status=RunStatus.DONE).exists()
        if not last:
            held.update(status=RunStatus.DONE, lease_expires_at=None)
    return sweep_id, last


class LostChunk(Exception):
    """The worker no longer holds the chunk: another took it, or the sweep ended."""


def finish_stitched(
    chunk_id: int, worker_id: str, record: Callable[[], tuple[str | None, dict | None]]
) -> bool:
    """The last walk-forward chunk DONE and its sweep DONE, with what `record` saves in
    the same transaction (the stitched run: its id and the sweep's `best`)."""
    with transaction.atomic():
        held = holding(chunk_id, worker_id).filter(sweep__status=RunStatus.RUNNING)
        sweep_id = held.values_list("sweep_id", flat=True).first()
        if sweep_id is None or not held.update(status=RunStatus.DONE, lease_expires_at=None):
            return False
        run_id, best_of = record()
        fields = {"status": RunStatus.DONE, "finished_at": timezone.now(), "oos_run_id": run_id}
        if best_of is not None:
            fields["best"] = best_of
        Sweep.objects.filter(pk=sweep_id).update(**fields)
    return True


def fail(chunk_id: int, worker_id: str, error: str) -> bool:
    """The chunk ERROR, its sweep ERROR with the message, the sweep's other chunks that
    have not started CANCELLED."""
    with transaction.atomic():
        sweep_id = holding(chunk_id, worker_id).values_list("sweep_id", flat=True).first()
        if sweep_id is None:
            return False
        holding(chunk_id, worker_id).update(status=RunStatus.ERROR, lease_expires_at=None)
        end_sweep(sweep_id, RunStatus.ERROR, error)
    return True


def end_sweep(sweep_id: str, new_status: str, error: str = "") -> bool:
    """An active sweep to ERROR or CANCELLED; its QUEUED chunks CANCELLED."""
    fields = {"status": new_status, "error": error, "finished_at": timezone.now()}
    if new_status == RunStatus.CANCELLED:
        fields["cancel_requested"] = True
    updated = Sweep.objects.filter(pk=sweep_id, status__in=ACTIVE).update(**fields)
    SweepChunk.objects.filter(sweep_id=sweep_id, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED
    )
    return bool(updated)


def stopped(chunk_id: int, worker_id: str) -> bool:
    """A chunk that stopped for a cancel: CANCELLED, its results not recorded."""
    return bool(
        holding(chunk_id, worker_id).update(status=RunStatus.CANCELLED, lease_expires_at=None)
    )


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did: the sweep's status after it, whether this call moved it."""

    found: bool
    status: str = ""
    moved: bool = False


def cancel(sweep_id: str) -> CancelOutcome:
    """Cancel an active sweep at once (its running chunks stop at their next variant)."""
    with transaction.atomic():
        moved = end_sweep(sweep_id, RunStatus.CANCELLED)
        row = Sweep.objects.filter(pk=sweep_id).values_list("status", flat=True).first()
    if row is None:
        return CancelOutcome(False)
    return CancelOutcome(True, row, moved)


def requeue_expired() -> list[int]:
    """Requeue every RUNNING chunk whose lease expired; after JOB_MAX_ATTEMPTS its sweep
    is ERROR."""
    now = timezone.now()
    expired = list(
        SweepChunk.objects.filter(status=RunStatus.RUNNING)
        .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True))
        .values_list("pk", "sweep_id", "number", "attempts", "lease_expires_at")
    )
    moved = []
    for chunk_id, sweep_id, number, attempts, lease in expired:
        with transaction.atomic():
            same = SweepChunk.objects.filter(
                pk=chunk_id, status=RunStatus.RUNNING, lease_expires_at=lease
            )
            if attempts >= settings.JOB_MAX_ATTEMPTS:
                if not same.update(status=RunStatus.ERROR, lease_expires_at=None):
                    continue
                end_sweep(
                    sweep_id,
                    RunStatus.ERROR,
                    f"the worker computing chunk {number} stopped {attempts} times (killed "
                    "or lost); not retried again",
                )
            else:
                if not same.update(status=RunStatus.QUEUED, worker_id="", lease_expires_at=None):
                    continue
                enqueue(chunk_id)
        logger.warning(
            "sweep %s chunk %d lost its worker (lease expired, attempt %d)",
            sweep_id,
            number,
            attempts,
        )
        moved.append(chunk_id)
    return moved


def live_tasks():
    """The chunk ids (as text) of tasks that will still claim their chunk."""
    from backtests.sweeps.tasks import run_sweep_chunk

    return live_task_args(run_sweep_chunk)


def requeue_orphans() -> list[int]:
    """Enqueue again every QUEUED chunk of an active sweep that has no live task."""
    orphans = list(
        SweepChunk.objects.filter(status=RunStatus.QUEUED, sweep__status__in=ACTIVE)
        .annotate(key=Cast("pk", CharField()))
        .exclude(key__in=live_tasks())
        .values_list("pk", flat=True)
    )
    for chunk_id in orphans:
        with transaction.atomic():
            enqueue(chunk_id)
        logger.warning("sweep chunk %d was QUEUED without a task: enqueued again", chunk_id)
    return orphans
