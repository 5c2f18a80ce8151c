from django.core.management.base import BaseCommand

from backtests.catalog.demo import load_demo


class Command(BaseCommand):
    help = "Load a small demo catalog (datasets and runs in every status). Safe to run twice."

    def handle(self, *args, **options) -> None:
        """Add what is missing and say how much that was."""
        datasets, runs = load_demo()
        self.stdout.write(f"demo catalog: added {datasets} datasets and {runs} runs")
