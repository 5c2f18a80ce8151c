"""The catalog in the Django admin: where an operator manages datasets and runs."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from backtests.admin_forms import RunAddForm
from backtests.catalog import queries
from backtests.jobs import lifecycle
from backtests.models import Dataset, Run, RunMetrics, Sweep
from backtests.sweeps import lifecycle as sweeps


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
        "interval",
        "from_date",
        "to_date",
        "bars",
        "status",
        "synthetic",
        "size_bytes",
    )
    list_filter = ("status", "interval", "synthetic", "symbol")
    # What describes the bars file comes from the file (import_bars, POST /datasets).
    readonly_fields = (
        "bars_path",
        "bars_sha256",
        "synthetic",
        "size_bytes",
        "interval",
        "tz",
        "bars",
        "first_bar_at",
        "last_bar_at",
    )
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
        "started_at",
        "duration_ms",
        "attempts",
        "total_return",
        "sharpe",
        "max_drawdown",
    )
    list_filter = ("status", "strategy_id", "dataset__symbol", "cancel_requested", "started_at")
    actions = ("cancel_runs", "rerun_runs")
    search_fields = ("run_id", "dataset__dataset_id")
    ordering = ("-created_at",)
    list_select_related = ("dataset", "metrics")
    readonly_fields = (
        "run_id",
        "viewer",
        "created_at",
        "input_hash",
        "code_hash",
        "bars_sha256",
        "error",
        "started_at",
        "finished_at",
        "duration_ms",
        "attempts",
        "worker_id",
        "lease_expires_at",
        "cancel_requested",
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

    # A run is changed only by its lifecycle (the actions: cancel, re-run; the workers):
    # a status set by hand would claim artifacts that do not exist, or strand a task.
    def get_readonly_fields(self, request, obj=None) -> tuple[str, ...]:
        """Everything, on an existing run; nothing but the add form's inputs on a new one."""
        if obj is None:
            return ()
        return ("viewer", *(f.name for f in Run._meta.fields))

    def get_fields(self, request, obj=None) -> list[str]:
        if obj is None:
            return list(RunAddForm.Meta.fields)
        return super().get_fields(request, obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = RunAddForm
        return super().get_form(request, obj, **kwargs)

    def get_inlines(self, request, obj=None) -> list:
        return self.inlines if obj is not None else []

    def save_model(self, request, obj: Run, form, change: bool) -> None:
        """Add a run as POST /backtests does (its hash, its task, or the existing run)."""
        if change:
            return  # nothing on the page is editable
        # The admin's run is theirs, as a run POSTed with their token would be.
        creator = queries.Creator(user=request.user)
        created = queries.create_on(form.cleaned_data["dataset"], form.run_request, None, creator)
        obj.run_id = created.run_id
        obj._state.adding = False
        if not created.new:
            self.message_user(
                request,
                f"A run with the same inputs exists already: {created.run_id} (nothing added).",
                messages.WARNING,
            )

    @admin.display(description="viewer")
    def viewer(self, run: Run) -> str:
        """A link to the page that plays the run."""
        url = reverse("run-play", args=[run.run_id])
        return format_html('<a href="{}">Play this run</a>', url)

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

    @admin.action(description="Cancel the selected runs (QUEUED now, RUNNING at a checkpoint)")
    def cancel_runs(self, request, queryset) -> None:
        outcomes = [lifecycle.cancel(run_id) for run_id in queryset.values_list("pk", flat=True)]
        moved = sum(outcome.moved for outcome in outcomes)
        self.message_user(
            request,
            f"{moved} of {len(outcomes)} runs cancelled or asked to stop; "
            "finished runs were left as they are.",
        )

    @admin.action(description="Re-run the selected finished runs (DONE, ERROR, CANCELLED)")
    def rerun_runs(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        queued = sum(lifecycle.rerun(run_id) for run_id in ids)
        self.message_user(
            request,
            f"{queued} of {len(ids)} runs queued again; QUEUED and RUNNING runs were "
            "left as they are.",
        )


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    """Sweeps, read-only (they are made through POST /sweeps); cancel as an action."""

    list_display = (
        "sweep_id",
        "status",
        "strategy_id",
        "dataset",
        "method",
        "total",
        "done",
        "skipped",
        "created_at",
    )
    list_filter = ("status", "method", "strategy_id")
    search_fields = ("sweep_id", "strategy_id", "dataset__dataset_id")
    date_hierarchy = "created_at"
    actions = ["cancel_sweeps"]

    def get_readonly_fields(self, request, obj=None) -> tuple[str, ...]:
        return tuple(f.name for f in Sweep._meta.fields)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel the selected sweeps (chunks not started never start)")
    def cancel_sweeps(self, request, queryset) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        moved = sum(sweeps.cancel(sweep_id).moved for sweep_id in ids)
        self.message_user(
            request, f"{moved} of {len(ids)} sweeps cancelled; finished ones were left alone."
        )
