"""The catalog in the Django admin: where an operator manages datasets and runs."""

from django.contrib import admin

from backtests.models import Dataset, Run, RunMetrics


class RunInline(admin.TabularInline):
    """A dataset's runs, newest first, linked to their own pages."""

    model = Run
    fields = ("run_id", "status", "strategy_id", "seed", "created_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    show_change_link = True
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = (
        "dataset_id",
        "symbol",
        "from_date",
        "to_date",
        "status",
        "synthetic",
        "size_bytes",
    )
    list_filter = ("status", "synthetic", "symbol")
    readonly_fields = ("bars_path", "bars_sha256", "synthetic", "size_bytes")
    search_fields = ("dataset_id", "symbol")
    inlines = [RunInline]


class RunMetricsInline(admin.StackedInline):
    model = RunMetrics
    can_delete = False
    extra = 0


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "run_id",
        "status",
        "strategy_id",
        "symbol",
        "from_date",
        "to_date",
        "created_at",
        "total_return",
        "sharpe",
        "max_drawdown",
    )
    list_filter = ("status", "strategy_id", "dataset__symbol")
    search_fields = ("run_id", "dataset__dataset_id")
    ordering = ("-created_at",)
    list_select_related = ("dataset", "metrics")
    readonly_fields = (
        "run_id",
        "created_at",
        "input_hash",
        "code_hash",
        "error",
        "idempotency_key",
        "metrics_path",
        "equity_path",
        "orders_path",
        "fills_path",
        "manifest_path",
    )
    autocomplete_fields = ("dataset",)
    inlines = [RunMetricsInline]
    date_hierarchy = "created_at"

    @admin.display(ordering="dataset__symbol")
    def symbol(self, run: Run) -> str:
        return run.dataset.symbol

    @admin.display(ordering="dataset__from_date")
    def from_date(self, run: Run):
        return run.dataset.from_date

    @admin.display(ordering="dataset__to_date")
    def to_date(self, run: Run):
        return run.dataset.to_date

    @admin.display(ordering="metrics__total_return")
    def total_return(self, run: Run) -> float | None:
        return getattr(getattr(run, "metrics", None), "total_return", None)

    @admin.display(ordering="metrics__sharpe")
    def sharpe(self, run: Run) -> float | None:
        return getattr(getattr(run, "metrics", None), "sharpe", None)

    @admin.display(ordering="metrics__max_drawdown")
    def max_drawdown(self, run: Run) -> float | None:
        return getattr(getattr(run, "metrics", None), "max_drawdown", None)
