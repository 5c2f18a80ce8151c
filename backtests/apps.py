from django.apps import AppConfig


class BacktestsConfig(AppConfig):
    name = "backtests"

    def ready(self) -> None:
        """Serve the job metrics on /metrics (backtests/jobs/metrics.py)."""
        from prometheus_client import REGISTRY

        from backtests.jobs.metrics import COLLECTOR

        if COLLECTOR not in REGISTRY._collector_to_names:
            REGISTRY.register(COLLECTOR)
