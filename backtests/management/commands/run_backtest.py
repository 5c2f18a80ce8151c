from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backtests.jobs import lifecycle
from backtests.jobs.execute import default_worker_id, execute
from backtests.models import Run


class Command(BaseCommand):
    help = (
        "Compute one QUEUED run now, in this process, and record DONE (or ERROR). A finished "
        "run is computed again only with --force; a run that a worker is computing is left "
        "to it."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id")
        parser.add_argument(
            "--force",
            action="store_true",
            help="compute a DONE, ERROR or CANCELLED run again (a cancelled one too)",
        )

    def handle(self, *args, run_id: str, force: bool, **options) -> None:
        """Run it and say how it ended."""
        run = Run.objects.filter(run_id=run_id).first()
        if run is None:
            raise CommandError(f"no run {run_id}")
        if run.status == Run.Status.RUNNING:
            raise CommandError(
                f"run {run_id} is RUNNING on worker {run.worker_id}; cancel it first"
            )
        if run.status != Run.Status.QUEUED:
            if not force:
                raise CommandError(
                    f"run {run_id} is {run.status}, not QUEUED: nothing done. Give --force "
                    "to compute it again."
                )
            lifecycle.rerun(run_id, queue=False)
        status = execute(run_id, f"run_backtest@{default_worker_id()}")
        run.refresh_from_db()
        if status is None:
            raise CommandError(f"run {run_id} was taken by another process ({run.status})")
        if run.status == Run.Status.ERROR:
            raise CommandError(f"run {run_id} failed: {run.error}")
        metrics = run.metrics
        self.stdout.write(
            f"run {run_id} DONE in {run.duration_ms} ms: total_return {metrics.total_return}, "
            f"max_drawdown {metrics.max_drawdown}, artifacts in {settings.ARTIFACTS_DIR / run_id}"
        )
