from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backtests.catalog.bars_import import BadImport, DatasetInUse, import_file
from backtests.engine.bars import BarsError
from backtests.engine.intervals import INTERVALS


class Command(BaseCommand):
    help = (
        "Load OHLCV bars (CSV or Parquet: ts, open, high, low, close, volume) into a dataset. "
        "The interval is inferred (or --interval); every row is checked, and a bad file is "
        "refused with nothing written. A dataset that has runs keeps its bars."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("dataset_id")
        parser.add_argument("file", type=Path)
        parser.add_argument("--symbol", required=True, help="ticker, upper-cased (AAPL, EURUSD)")
        parser.add_argument(
            "--tz", default="UTC", help="IANA zone of times without an offset, and of dates"
        )
        parser.add_argument(
            "--interval", choices=INTERVALS, help="the bar interval (default: inferred)"
        )

    def handle(self, *args, dataset_id: str, file: Path, symbol: str, tz: str, **options):
        """Import, or stop with why not (the file's first bad rows, or the dataset's runs)."""
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            imported = import_file(dataset_id, file, symbol, tz, options["interval"])
        except BadImport as exc:
            raise CommandError(f"refused, nothing written: {exc}") from None
        except BarsError as exc:
            raise CommandError(f"{file} refused, nothing written:\n{exc}") from None
        except DatasetInUse as exc:
            raise CommandError(f"refused, nothing written: {exc}") from None
        dataset = imported.dataset
        self.stdout.write(
            f"dataset {dataset.dataset_id} {imported.outcome}: {dataset.symbol} "
            f"{dataset.interval} bars, {dataset.bars:,} of them, {dataset.from_date} to "
            f"{dataset.to_date} ({dataset.tz}), {dataset.size_bytes:,} bytes, sha256 "
            f"{dataset.bars_sha256}, READY"
        )
