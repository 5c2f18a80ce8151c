"""The run catalog: datasets, runs and their metrics."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from ulid import ULID

from backtests.engine.intervals import INTERVALS
from backtests.engine.metrics import FIELDS as metric_fields


def new_run_id() -> str:
    """A new ULID string: unique, and sortable by creation time."""
    return str(ULID())


class DatasetStatus(models.TextChoices):
    READY = "READY"
    BUILDING = "BUILDING"
    ERROR = "ERROR"


class RunStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


class Dataset(models.Model):
    """Market data a run replays: one symbol's bars at one interval over a date range.

    Its bars file is named by its sha256 and never rewritten; a dataset that runs use is
    never given other bars (backtests/catalog/bars_import.py).
    """

    Status = DatasetStatus
    Interval = models.TextChoices("Interval", [(name, name) for name in INTERVALS])

    dataset_id = models.CharField(primary_key=True, max_length=64)
    symbol = models.CharField(max_length=32)
    from_date = models.DateField()
    to_date = models.DateField()
    products = models.JSONField(default=list, blank=True, help_text="e.g. TRADES, TBBO")
    calendar_version = models.CharField(max_length=32, blank=True)
    tz = models.CharField(max_length=64, default="America/New_York")
    generated_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BUILDING)
    bars_path = models.CharField(
        max_length=500, blank=True, help_text="the Parquet bars file, under DATA_DIR"
    )
    bars_sha256 = models.CharField(max_length=64, blank=True)
    synthetic = models.BooleanField(
        default=False, help_text="generated prices (the demo), not market data"
    )
    interval = models.CharField(max_length=8, choices=Interval.choices, default="1m")
    bars = models.BigIntegerField(default=0, help_text="how many bars the file holds")
    first_bar_at = models.DateTimeField(null=True, blank=True)
    last_bar_at = models.DateTimeField(null=True, blank=True)
    # Who uploaded it; none for the operator's (import_bars, the demo), which every user
    # may use. A user's own dataset is theirs alone unless it is public.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="datasets",
    )
    public = models.BooleanField(default=False, help_text="every user may read and use it")

    class Meta:
        ordering = ["dataset_id"]
        indexes = [
            models.Index(fields=["symbol", "from_date", "to_date"], name="dataset_symbol_range"),
            models.Index(fields=["interval", "dataset_id"], name="dataset_interval"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DatasetStatus.values), name="dataset_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(from_date__lte=F("to_date")), name="dataset_range_ordered"
            ),
            models.CheckConstraint(
                condition=Q(size_bytes__gte=0), name="dataset_size_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.dataset_id


class Run(models.Model):
    """One backtest: a strategy with its parameters over a dataset."""

    Status = RunStatus

    run_id = models.CharField(primary_key=True, max_length=26, default=new_run_id, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs")
    strategy_id = models.CharField(max_length=100)
    strategy_version = models.CharField(
        max_length=64, blank=True, help_text="a hash of the strategy's source when queued"
    )
    params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField()
    slippage_fees = models.JSONField(help_text='{"k_spread": number, "fees_bps": number}')
    speed = models.PositiveIntegerField(default=60)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    metrics_path = models.CharField(max_length=500, blank=True)
    equity_path = models.CharField(max_length=500, blank=True)
    orders_path = models.CharField(max_length=500, blank=True)
    fills_path = models.CharField(max_length=500, blank=True)
    manifest_path = models.CharField(max_length=500, blank=True)
    code_hash = models.CharField(max_length=64, blank=True)
    bars_sha256 = models.CharField(
        max_length=64, blank=True, help_text="the sha256 of the bars it was computed on"
    )
    input_hash = models.CharField(max_length=64, unique=True)
    error = models.TextField(blank=True, help_text="why the run failed, for people")
    # The lifecycle (backtests/jobs/lifecycle.py): the Run row is the source of truth.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="times a worker claimed it")
    worker_id = models.CharField(max_length=100, blank=True, help_text="who holds the lease")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Scoped to its owner ("<user id>:<key>"), so that two users' keys never meet.
    idempotency_key = models.CharField(max_length=300, unique=True, null=True, blank=True)
    # Who created it: the user, or, without one (AUTH_MODE=off), the client's address,
    # which the active-runs quota counts by.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs",
    )
    client = models.CharField(max_length=64, blank=True, help_text="the address it came from")
    artifacts_pruned_at = models.DateTimeField(
        null=True, blank=True, help_text="when retention removed its files (its metrics stay)"
    )

    class Meta:
        ordering = ["-created_at", "-run_id"]
        # The list's indexes end in its order (created_at, run_id), so that a page is read
        # in index order instead of sorting every matching row.
        indexes = [
            models.Index(fields=["created_at", "run_id"], name="run_created"),
            models.Index(
                fields=["strategy_id", "created_at", "run_id"], name="run_strategy_created"
            ),
            models.Index(fields=["status", "created_at", "run_id"], name="run_status_created"),
            # Counts runs by dataset (the symbol and date filters) and status from the index.
            models.Index(fields=["dataset", "status"], name="run_dataset_status"),
            # The sweep for lost workers: RUNNING runs whose lease has expired.
            models.Index(fields=["status", "lease_expires_at"], name="run_status_lease"),
            # A user's own runs (AUTH_MODE=required): the list's indexes again, the owner
            # first; (owner, status, ...) also counts the active-runs quota.
            models.Index(fields=["owner", "created_at", "run_id"], name="run_owner_created"),
            models.Index(
                fields=["owner", "status", "created_at", "run_id"], name="run_owner_status"
            ),
            models.Index(
                fields=["owner", "strategy_id", "created_at", "run_id"], name="run_owner_strategy"
            ),
            models.Index(fields=["owner", "dataset", "status"], name="run_owner_dataset"),
            models.Index(fields=["client", "status"], name="run_client_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="run_status_valid"
            ),
            models.CheckConstraint(condition=Q(seed__gte=0), name="run_seed_non_negative"),
            models.CheckConstraint(condition=Q(speed__gt=0), name="run_speed_positive"),
            models.CheckConstraint(
                condition=Q(duration_ms__isnull=True) | Q(duration_ms__gte=0),
                name="run_duration_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.run_id

    def artifacts(self) -> dict[str, str | None]:
        """Where the run's outputs are, by kind; None until the runner writes them."""
        return {
            "metrics": self.metrics_path or None,
            "equity": self.equity_path or None,
            "orders": self.orders_path or None,
            "fills": self.fills_path or None,
            "manifest": self.manifest_path or None,
        }


class Figures(models.Model):
    """A variant's or a run's performance figures (backtests/engine/metrics.py computes
    them); null: undefined for it (docs/engine.md says when)."""

    total_return = models.FloatField(null=True, blank=True)
    cagr = models.FloatField(null=True, blank=True)
    max_drawdown = models.FloatField(null=True, blank=True)
    sharpe = models.FloatField(null=True, blank=True)
    sortino = models.FloatField(null=True, blank=True)
    hit_rate = models.FloatField(null=True, blank=True)
    avg_win = models.FloatField(null=True, blank=True)
    avg_loss = models.FloatField(null=True, blank=True)
    turnover = models.FloatField(null=True, blank=True)
    slippage_share = models.FloatField(null=True, blank=True)
    fees_paid = models.FloatField(null=True, blank=True)
    exposure_time = models.FloatField(null=True, blank=True)
    buy_and_hold_return = models.FloatField(null=True, blank=True)
    annual_return = models.FloatField(null=True, blank=True)
    annual_volatility = models.FloatField(null=True, blank=True)
    calmar = models.FloatField(null=True, blank=True)
    avg_drawdown = models.FloatField(null=True, blank=True)
    max_drawdown_duration_s = models.FloatField(null=True, blank=True)
    trades = models.PositiveIntegerField(null=True, blank=True, help_text="closed trades")
    best_trade = models.FloatField(null=True, blank=True)
    worst_trade = models.FloatField(null=True, blank=True)
    expectancy = models.FloatField(null=True, blank=True)
    profit_factor = models.FloatField(null=True, blank=True)
    sqn = models.FloatField(null=True, blank=True)
    kelly = models.FloatField(null=True, blank=True)

    class Meta:
        abstract = True

    # The figures, in the engine's order.
    FIELDS = metric_fields


class RunMetrics(Figures):
    """A finished run's performance figures (one row per run)."""

    run = models.OneToOneField(
        Run, on_delete=models.CASCADE, primary_key=True, related_name="metrics"
    )
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "run metrics"
        constraints = [
            models.CheckConstraint(
                condition=Q(hit_rate__gte=0) & Q(hit_rate__lte=1), name="metrics_hit_rate_unit"
            ),
        ]

    def __str__(self) -> str:
        return f"metrics of {self.run_id}"


class Sweep(models.Model):
    """A parameter sweep: one strategy over a grid of its parameters on one dataset
    (docs/sweeps.md). Its variants are computed in chunks, one task each."""

    Status = RunStatus

    sweep_id = models.CharField(primary_key=True, max_length=26, default=new_run_id, editable=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="sweeps")
    strategy_id = models.CharField(max_length=100)
    strategy_version = models.CharField(max_length=64, blank=True)
    method = models.CharField(max_length=16, default="grid")
    grid = models.JSONField(default=dict, help_text="parameter -> its values, in grid order")
    max_variants = models.PositiveIntegerField(null=True, blank=True)
    maximize = models.CharField(max_length=32, default="sharpe")
    seed = models.BigIntegerField(default=0)
    slippage_fees = models.JSONField(help_text='{"k_spread": number, "fees_bps": number}')
    walk_forward = models.JSONField(
        default=dict, blank=True, help_text="train, test and step, in bars (walk_forward)"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="variants to compute")
    skipped = models.PositiveIntegerField(default=0, help_text="left out by a constraint")
    done = models.PositiveIntegerField(default=0, help_text="variants computed so far")
    best = models.JSONField(null=True, blank=True, help_text="{variant, params, metrics}")
    best_value = models.FloatField(null=True, blank=True)
    best_variant = models.BigIntegerField(null=True, blank=True)
    windows = models.JSONField(
        default=list, blank=True, help_text="walk_forward: each window's choice and figures"
    )
    oos_run = models.ForeignKey(
        Run,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="walk_forward: the stitched out-of-sample run",
    )
    error = models.TextField(blank=True)
    input_hash = models.CharField(max_length=64, unique=True)
    idempotency_key = models.CharField(max_length=300, unique=True, null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sweeps",
    )
    client = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-sweep_id"]
        indexes = [
            models.Index(fields=["created_at", "sweep_id"], name="sweep_created"),
            models.Index(fields=["owner", "created_at", "sweep_id"], name="sweep_owner_created"),
            models.Index(fields=["owner", "status"], name="sweep_owner_status"),
            models.Index(fields=["client", "status"], name="sweep_client_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="sweep_status_valid"
            ),
            models.CheckConstraint(condition=Q(seed__gte=0), name="sweep_seed_non_negative"),
        ]

    def __str__(self) -> str:
        return self.sweep_id


class SweepChunk(models.Model):
    """A slice of a sweep's variants (or one walk-forward window): one task computes it.

    Its lifecycle is a run's (backtests/sweeps/lifecycle.py): claimed under a lease,
    taken again when the lease lapses, its results written with its DONE in one
    transaction, so that a chunk computed twice records its results once."""

    Status = RunStatus

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    variants = models.JSONField(default=list, help_text="the grid numbers it computes")
    window = models.PositiveIntegerField(null=True, blank=True, help_text="walk_forward")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    worker_id = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sweep", "number"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "number"], name="sweep_chunk_unique"),
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="sweep_chunk_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="sweep_chunk_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.sweep_id} chunk {self.number}"


class SweepResult(Figures):
    """One variant's figures (null when undefined, or all null with `error`)."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="results")
    variant = models.BigIntegerField(help_text="its grid number")
    params = models.JSONField()
    fills = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["sweep", "variant"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "variant"], name="sweep_result_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.sweep_id} variant {self.variant}"
