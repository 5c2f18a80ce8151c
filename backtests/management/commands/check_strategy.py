import json
from datetime import date
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backtests.engine import bars as engine_bars
from backtests.engine import lookahead, strategies, synthetic
from backtests.engine.simulation import Costs
from backtests.models import Dataset

SHOWN = 10


class Command(BaseCommand):
    help = (
        "Check a strategy for look-ahead: run it on the whole bars and on prefixes cut at "
        "many places, and report each bar whose target changes when later bars are removed "
        "(exit status 1 if any). Default bars: a synthetic month of one-minute NYSE bars."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("strategy_id")
        parser.add_argument("--dataset", help="a READY dataset's id")
        parser.add_argument("--params", default="{}", help="the parameters, as JSON")

    def handle(self, *args, strategy_id: str, dataset: str | None, params: str, **options):
        """Run the check and say what it found."""
        try:
            strategy = strategies.get(strategy_id)
        except strategies.UnknownStrategy:
            known = ", ".join(strategies.REGISTRY)
            raise CommandError(f"no strategy {strategy_id} (known: {known})") from None
        try:
            resolved = strategies.resolve_params(strategy, json.loads(params))
        except (ValueError, strategies.ParamsError) as exc:
            raise CommandError(f"bad --params: {exc}") from None
        series = self.bars(dataset)
        try:
            found = lookahead.peeks(strategy, series, resolved, Costs(0.0, 0.0))
        except strategies.StrategyOutputError as exc:
            raise CommandError(str(exc)) from None
        where = f"{len(series):,} bars ({dataset or 'synthetic'})"
        if not found:
            self.stdout.write(f"{strategy_id}: no look-ahead found over {where}")
            return
        for peek in found[:SHOWN]:
            self.stdout.write(
                f"bar {peek.bar}: target {peek.full:g} with all the bars, {peek.prefix:g} "
                f"with only the first {peek.cut}"
            )
        self.stderr.write(
            f"{strategy_id} looks ahead: {len(found)} bars' targets depend on later bars "
            f"over {where}"
        )
        raise SystemExit(1)

    def bars(self, dataset_id: str | None) -> engine_bars.Bars:
        """The dataset's bars, or the synthetic month."""
        if dataset_id is None:
            return synthetic.generate("CHECK", date(2023, 3, 1), date(2023, 3, 31))
        dataset = Dataset.objects.filter(pk=dataset_id, status=Dataset.Status.READY).first()
        if dataset is None or not dataset.bars_path:
            raise CommandError(f"no READY dataset {dataset_id} with bars")
        path = Path(settings.DATA_DIR) / dataset.bars_path
        return engine_bars.load(path, dataset.bars_sha256, dataset.interval, dataset.tz)
