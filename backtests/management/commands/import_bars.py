import re
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backtests.catalog.bars_import import import_file
from backtests.engine.bars import BarsError

DATASET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Command(BaseCommand):
    help = (
        "Load one-minute bars (CSV or Parquet: ts, open, high, low, close, volume) into a "
        "dataset. Every row is checked; a bad file is refused and nothing is written."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset_id")
        parser.add_argument("file", type=Path)
        parser.add_argument("--symbol", required=True)
        parser.add_argument("--tz", default="UTC", help="zone of times without an offset")

    def handle(self, *args, dataset_id: str, file: Path, symbol: str, tz: str, **options):
        """Import, or stop with the file's first bad rows."""
        if not DATASET_ID.fullmatch(dataset_id):
            raise CommandError("DATASET_ID must be 1-64 characters: letters, digits, _ or -")
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            dataset = import_file(dataset_id, file, symbol, tz)
        except BarsError as exc:
            raise CommandError(f"{file} refused, nothing written:\n{exc}") from None
        self.stdout.write(
            f"dataset {dataset.dataset_id}: {dataset.symbol} {dataset.from_date} to "
            f"{dataset.to_date}, {dataset.size_bytes:,} bytes, sha256 {dataset.bars_sha256}, "
            "READY"
        )
