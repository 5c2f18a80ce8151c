"""The sweeps' operations: create a sweep idempotently with its chunks, list and read
sweeps, their results and heatmap. A create plans every variant (up to
SWEEP_MAX_VARIANTS of them), so it runs in a worker thread, never on the event loop.
"""

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import F

from backtests.catalog import access
from backtests.catalog.hashing import hash_of
from backtests.catalog.queries import (
    Created,
    Creator,
    IdempotencyConflict,
    check_quota,
    resolve_dataset,
)
from backtests.catalog.queries import create_on as create_run_on
from backtests.catalog.validation import RunRequest
from backtests.engine import bars, strategies, sweep, walk_forward
from backtests.models import Dataset, Sweep, SweepChunk, SweepResult
from backtests.sweeps import lifecycle
from backtests.sweeps.validation import HeatmapQuery, ResultsQuery, SweepRequest


class NothingToCompute(Exception):
    """Every variant the sweep chose breaks the strategy's constraints."""


class BadWindows(Exception):
    """Walk-forward windows that do not fit the dataset's bars."""


async def create_sweep(
    request: SweepRequest, idempotency_key: str | None, creator: Creator
) -> tuple[Created, int]:
    """Create a QUEUED sweep (or find the earlier one): (created, its total)."""
    dataset = await resolve_dataset(request, creator.user or AnonymousUser())
    return await sync_to_async(create_on)(dataset, request, idempotency_key, creator)


def digest_of(dataset: Dataset, request: SweepRequest, strategy, owner: int | None) -> str:
    """The sweep's input hash: the same inputs (after defaults) are the same sweep."""
    return hash_of(
        {
            "sweep": True,
            "dataset_id": dataset.dataset_id,
            "strategy_id": request.strategy_id,
            "strategy_version": strategy.version,
            "grid": {name: list(values) for name, values in request.axes.items()},
            "method": request.method,
            "max_variants": request.max_variants,
            "maximize": request.maximize,
            "seed": request.seed,
            "slippage_fees": request.slippage_fees,
            "walk_forward": request.walk_forward,
            "owner": owner,
        }
    )


def create_on(
    dataset: Dataset, request: SweepRequest, idempotency_key: str | None, creator: Creator
) -> tuple[Created, int]:
    """`create_sweep` on a resolved dataset (sync)."""
    strategy = strategies.get(request.strategy_id)
    digest = digest_of(dataset, request, strategy, creator.owner_id)
    key = creator.scoped(idempotency_key)
    earlier = find_earlier(digest, key)
    if earlier is not None:
        return earlier
    plan = sweep.plan(strategy, request.axes, request.method, request.max_variants, request.seed)
    if not plan.variants:
        raise NothingToCompute(
            f"all {plan.skipped:,} variants break the strategy's constraints: "
            + "; ".join(message for _, message in strategy.constraints)
        )
    chunks = chunk_numbers(plan, request, dataset)
    total = len(plan.variants)
    try:
        with transaction.atomic():
            if creator.limited:
                check_active(creator)
            row = Sweep.objects.create(
                dataset=dataset,
                strategy_id=strategy.strategy_id,
                strategy_version=strategy.version,
                method=request.method,
                grid={name: list(values) for name, values in request.axes.items()},
                max_variants=request.max_variants,
                maximize=request.maximize,
                seed=request.seed,
                slippage_fees=request.slippage_fees,
                walk_forward=request.walk_forward,
                total=total if request.method != "walk_forward" else len(chunks),
                skipped=plan.skipped,
                input_hash=digest,
                idempotency_key=key,
                owner=creator.user,
                client=creator.client[:64],
            )
            made = SweepChunk.objects.bulk_create(
                [
                    SweepChunk(sweep=row, number=number, variants=numbers, window=window)
                    for number, (numbers, window) in enumerate(chunks)
                ]
            )
            ids = (
                [c.pk for c in made]
                if made and made[0].pk
                else list(
                    SweepChunk.objects.filter(sweep=row)
                    .order_by("number")
                    .values_list("pk", flat=True)
                )
            )
            for chunk_id in ids:  # each task commits with the sweep, or none does
                lifecycle.enqueue(chunk_id)
    except IntegrityError:
        earlier = find_earlier(digest, key)
        if earlier is None:
            raise
        return earlier
    return Created(row.sweep_id, new=True), row.total


def chunk_numbers(plan: sweep.Plan, request: SweepRequest, dataset: Dataset):
    """[(grid numbers, window)]: slices of SWEEP_CHUNK_VARIANTS variants, or for
    walk_forward one chunk per window with every variant."""
    numbers = [index for index, _ in plan.variants]
    if request.method != "walk_forward":
        size = settings.SWEEP_CHUNK_VARIANTS
        return [(numbers[i : i + size], None) for i in range(0, len(numbers), size)]
    spec = request.walk_forward
    ts = bars.read_parquet(Path(settings.DATA_DIR) / dataset.bars_path, ["ts"])
    ts = ts.column("ts").cast("int64").to_numpy()
    try:
        found = walk_forward.windows(ts, spec["train"], spec["test"], spec["step"])
    except walk_forward.WindowsError as exc:
        raise BadWindows(str(exc)) from None
    return [(numbers, w.number) for w in found]


def check_active(creator: Creator) -> None:
    """OverQuota if the creator has SWEEPS_MAX_ACTIVE sweeps QUEUED or RUNNING already."""
    check_quota(Sweep.objects.all(), creator, settings.SWEEPS_MAX_ACTIVE, "sweeps")


def find_earlier(digest: str, key: str | None) -> tuple[Created, int] | None:
    """The earlier sweep this create repeats: the same key (same inputs), or same inputs."""
    if key is not None:
        keyed = Sweep.objects.filter(idempotency_key=key).values_list(
            "sweep_id", "input_hash", "total"
        )
        found = keyed.first()
        if found is not None:
            if found[1] != digest:
                raise IdempotencyConflict(found[0])
            return Created(found[0], new=False), found[2]
    same = Sweep.objects.filter(input_hash=digest).values_list("sweep_id", "total").first()
    return (Created(same[0], new=False), same[1]) if same is not None else None


async def list_sweeps(user: access.User, limit: int, offset: int) -> tuple[list[Sweep], int]:
    """One page of the sweeps the user may read, newest first, and how many in all."""
    sweeps = Sweep.objects.all()
    if not access.sees_everything(user):
        sweeps = sweeps.filter(owner_id=user.pk)

    def fetch():
        page = sweeps.select_related("dataset").order_by("-created_at", "-sweep_id")
        return list(page[offset : offset + limit]), sweeps.count()

    return await sync_to_async(fetch)()


async def get_sweep(sweep_id: str) -> Sweep | None:
    """The sweep with its dataset, or None."""
    return await Sweep.objects.select_related("dataset").filter(pk=sweep_id).afirst()


@dataclass(frozen=True)
class ResultsPage:
    """One page of a sweep's results and how many there are."""

    rows: list[dict[str, Any]]
    total: int


RESULT_FIELDS = ("variant", "params", "error", "fills", *SweepResult.FIELDS)


def ordered_results(sweep_id: str, order: str):
    """The sweep's results in `order` ([-]metric or variant); a missing figure (null)
    sorts last either way, then by grid number."""
    name = order.removeprefix("-")
    descending = order.startswith("-")
    key = F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True)
    return SweepResult.objects.filter(sweep_id=sweep_id).order_by(key, "variant")


async def results(sweep_id: str, query: ResultsQuery) -> ResultsPage:
    """A page of results (every result for CSV)."""
    rows = ordered_results(sweep_id, query.order).values(*RESULT_FIELDS)

    def fetch() -> ResultsPage:
        total = SweepResult.objects.filter(sweep_id=sweep_id).count()
        if query.format == "csv":
            return ResultsPage(list(rows), total)
        return ResultsPage(list(rows[query.offset : query.offset + query.limit]), total)

    return await sync_to_async(fetch)()


AGGREGATE = {"max": max, "min": min, "mean": statistics.fmean, "median": statistics.median}


def heatmap(row: Sweep, query: HeatmapQuery) -> dict[str, Any]:
    """{"x", "y", "z"}: z[j][i] aggregates `metric` over the results at x[i], y[j] (the
    other parameters' values by `agg`); null where no result has the figure (sync)."""
    xs, ys = row.grid[query.x], row.grid[query.y]
    x_at = {value: i for i, value in enumerate(xs)}
    y_at = {value: j for j, value in enumerate(ys)}
    cells: dict[tuple[int, int], list[float]] = {}
    found = SweepResult.objects.filter(sweep=row, **{f"{query.metric}__isnull": False})
    for params, value in found.values_list("params", query.metric).iterator(chunk_size=5000):
        if math.isfinite(value):
            cell = (y_at[params[query.y]], x_at[params[query.x]])
            cells.setdefault(cell, []).append(value)
    reduce = AGGREGATE[query.agg]
    z = [
        [reduce(cells[(j, i)]) if (j, i) in cells else None for i in range(len(xs))]
        for j in range(len(ys))
    ]
    return {"x": xs, "y": ys, "z": z, "metric": query.metric, "agg": query.agg}


class NotAVariant(Exception):
    """Parameters that are not a point of the sweep's grid."""


def promote(row: Sweep, params: dict, creator: Creator) -> Created:
    """A normal run of one of the sweep's variants, created as POST /backtests creates
    one (sync). UnknownStrategy, ParamsError or NotAVariant when it cannot be."""
    strategy = strategies.get(row.strategy_id)
    resolved = strategies.resolve_params(strategy, params)
    axes = {name: tuple(values) for name, values in row.grid.items()}
    unswept = {name: p.default for name, p in strategy.params.items() if name not in axes}
    if sweep.index_of(axes, resolved) is None or any(
        resolved[name] != default for name, default in unswept.items()
    ):
        raise NotAVariant(f"give values from the sweep's grid: {row.grid}")
    run_request = RunRequest(
        strategy_id=row.strategy_id,
        params=resolved,
        seed=row.seed,
        slippage_fees=row.slippage_fees,
        speed=None,
        dataset_id=row.dataset_id,
    )
    return create_run_on(row.dataset, run_request, None, creator)
