from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backtests.jobs.execute import execute
from backtests.models import Run


class Command(BaseCommand):
    help = "Compute one run synchronously with the engine and record DONE (or ERROR)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id")

    def handle(self, *args, run_id: str, **options) -> None:
        """Run it and say how it ended."""
        try:
            run = execute(run_id)
        except Run.DoesNotExist:
            raise CommandError(f"no run {run_id}") from None
        if run.status == Run.Status.ERROR:
            raise CommandError(f"run {run_id} failed: {run.error}")
        metrics = run.metrics
        self.stdout.write(
            f"run {run_id} DONE in {run.duration_ms} ms: total_return {metrics.total_return}, "
            f"max_drawdown {metrics.max_drawdown}, artifacts in {settings.ARTIFACTS_DIR / run_id}"
        )
