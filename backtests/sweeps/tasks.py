"""The task the queue runs for sweeps: compute one chunk, retrying transient database errors."""

from django_tasks import task

from backtests.jobs.tasks import retrying
from backtests.sweeps.execute import execute_chunk


@task()
def run_sweep_chunk(chunk_id: int) -> str | None:
    """Compute a queued chunk; a chunk that is no longer QUEUED is left as it is."""
    return retrying(lambda: execute_chunk(chunk_id), f"sweep chunk {chunk_id}")
