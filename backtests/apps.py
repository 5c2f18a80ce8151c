from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class BacktestsConfig(AppConfig):
    name = "backtests"

    def ready(self) -> None:
        """Load the users' strategies (a bad module stops the process here, naming it);
        serve the job metrics on /metrics (backtests/jobs/metrics.py)."""
        from django.conf import settings
        from prometheus_client import REGISTRY

        from backtests.engine import loading

        try:
            loading.load(settings.BACKTEST_STRATEGY_MODULES)
        except loading.StrategyLoadError as exc:
            raise ImproperlyConfigured(f"{exc} (BACKTEST_STRATEGY_MODULES)") from None

        from backtests.jobs.metrics import COLLECTOR

        if COLLECTOR not in REGISTRY._collector_to_names:
            REGISTRY.register(COLLECTOR)
