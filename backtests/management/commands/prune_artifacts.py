"""manage.py prune_artifacts [--max-age-days D] [--max-bytes B] [--dry-run]: apply artifact
retention now (the workers apply ARTIFACTS_MAX_AGE_DAYS and ARTIFACTS_MAX_BYTES on their own)."""

from django.core.management.base import BaseCommand

from backtests.jobs import retention


class Command(BaseCommand):
    help = (
        "Remove finished runs' artifact folders older than --max-age-days, then the oldest "
        "while all hold more than --max-bytes (defaults: the settings; 0: no limit). Never "
        "a run being played; the runs' statistics stay."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--max-age-days", type=float, default=None)
        parser.add_argument("--max-bytes", type=int, default=None)
        parser.add_argument("--dry-run", action="store_true", help="say what would go")

    def handle(self, *args, max_age_days, max_bytes, dry_run, **options) -> None:
        for name, value in (("--max-age-days", max_age_days), ("--max-bytes", max_bytes)):
            if value is not None and value < 0:
                self.stderr.write(f"{name} must be 0 or more")
                raise SystemExit(2)
        report = retention.prune(max_age_days, max_bytes, dry_run=dry_run)
        verb = "would prune" if dry_run else "pruned"
        for run_id in report.runs:
            self.stdout.write(f"{verb} {run_id}")
        for run_id in report.kept_playing:
            self.stdout.write(f"kept {run_id}: being played")
        self.stdout.write(
            f"{verb} {len(report.runs)} runs, {report.bytes_freed:,} bytes; "
            f"{report.bytes_left:,} bytes of artifacts left"
        )
