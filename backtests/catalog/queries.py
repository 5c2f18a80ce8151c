"""The catalog's operations: create a run idempotently, list and get runs and datasets.

Async functions over Django's async ORM. The one write runs as a single sync block in a
worker thread, because a transaction (needed to survive a unique-key race) cannot span
async ORM calls.
"""

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Count

from accounts.quotas import OverQuota
from backtests.catalog import access
from backtests.catalog.hashing import input_hash
from backtests.catalog.serializers import DATASET_SUMMARY_FIELDS, RUN_SUMMARY_FIELDS
from backtests.catalog.validation import DatasetQuery, RunQuery, RunRequest
from backtests.engine import strategies
from backtests.engine.intervals import SECONDS
from backtests.jobs import lifecycle
from backtests.models import Dataset, Run

# A run POSTed without a speed plays its whole dataset in about this many seconds.
PLAYBACK_SECONDS = 60
# The speed of a dataset whose length is not known (one recorded before bars were counted).
FALLBACK_SPEED = 60


class DatasetNotFound(Exception):
    """No dataset has that id, or none that is READY covers the symbol and range."""


class DatasetForbidden(Exception):
    """The dataset is another user's, and not public."""


class DatasetNotReady(Exception):
    """The dataset exists but is not READY, so no run can use it yet."""

    def __init__(self, dataset: Dataset) -> None:
        super().__init__(f"dataset {dataset.dataset_id} is {dataset.status}")
        self.dataset = dataset


# What resolve_dataset raises when a create cannot use the dataset it names.
DATASET_REFUSALS = (DatasetNotFound, DatasetForbidden, DatasetNotReady)


class IdempotencyConflict(Exception):
    """The idempotency key already belongs to a run with different inputs."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"idempotency key already used by run {run_id}")
        self.run_id = run_id


@dataclass(frozen=True, slots=True)
class Created:
    """The outcome of a create: the run and whether this request made it."""

    run_id: str
    new: bool


async def resolve_dataset(request: RunRequest, user: access.User) -> Dataset:
    """The dataset a create names, by id or as the READY one covering symbol and range
    among those the user may use."""
    if request.dataset_id is not None:
        dataset = await Dataset.objects.filter(pk=request.dataset_id).afirst()
        if dataset is None:
            raise DatasetNotFound(f"no dataset {request.dataset_id}")
        if not access.may_use_dataset(user, dataset.owner_id, dataset.public):
            raise DatasetForbidden(f"dataset {request.dataset_id} is another user's")
        if dataset.status != Dataset.Status.READY:
            raise DatasetNotReady(dataset)
        return dataset
    # Of the datasets covering the range, the tightest; ties go to the smallest id.
    dataset = await (
        access.visible_datasets(Dataset.objects.all(), user)
        .filter(
            symbol=request.symbol,
            from_date__lte=request.from_date,
            to_date__gte=request.to_date,
            status=Dataset.Status.READY,
        )
        .order_by("-from_date", "to_date", "dataset_id")
        .afirst()
    )
    if dataset is None:
        raise DatasetNotFound(
            f"no READY dataset covers {request.symbol} "
            f"from {request.from_date} to {request.to_date}"
        )
    return dataset


def default_speed(dataset: Dataset) -> int:
    """The speed that plays the whole dataset in about PLAYBACK_SECONDS, at any interval
    (speed counts seconds of the bars' own time per second: docs/api/ws-protocol.md)."""
    if not dataset.bars:
        return FALLBACK_SPEED
    return max(1, round(dataset.bars * SECONDS[dataset.interval] / PLAYBACK_SECONDS))


@dataclass(frozen=True, slots=True)
class Creator:
    """Who creates a run: the user (None when anonymous) and the client's address."""

    user: Any = None
    client: str = ""
    limited: bool = False  # the API's requests are; the operator's (admin, commands) not

    @property
    def owner_id(self) -> int | None:
        return None if self.user is None else self.user.pk

    def scoped(self, idempotency_key: str | None) -> str | None:
        """The key as stored: a user's keys are their own ("<user id>:<key>")."""
        if idempotency_key is None or self.user is None:
            return idempotency_key
        return f"{self.user.pk}:{idempotency_key}"


async def create_run(
    request: RunRequest, idempotency_key: str | None, creator: Creator = Creator()
) -> Created:
    """Create a QUEUED run, or find the earlier run with the same key or the same inputs."""
    dataset = await resolve_dataset(request, creator.user or AnonymousUser())
    return await sync_to_async(create_on)(dataset, request, idempotency_key, creator)


def create_on(
    dataset: Dataset,
    request: RunRequest,
    idempotency_key: str | None,
    creator: Creator = Creator(),
) -> Created:
    """`create_run` on a resolved dataset (sync: the admin's "Add run" comes here too)."""
    speed = request.speed if request.speed is not None else default_speed(dataset)
    digest = input_hash(
        dataset_id=dataset.dataset_id,
        strategy_id=request.strategy_id,
        strategy_version=strategies.get(request.strategy_id).version,
        params=request.params,
        seed=request.seed,
        slippage_fees=request.slippage_fees,
        speed=speed,
        owner=creator.owner_id,
    )
    return create_or_find(dataset, request, speed, digest, creator.scoped(idempotency_key), creator)


def create_or_find(
    dataset: Dataset,
    request: RunRequest,
    speed: int,
    digest: str,
    idempotency_key: str | None,
    creator: Creator,
) -> Created:
    """Insert the run unless an earlier one matches; a lost insert race finds the winner."""
    earlier = find_earlier(digest, idempotency_key)
    if earlier is not None:
        # A repeat is how a client recovers a run left without a task: it gets one.
        lifecycle.ensure_task(earlier.run_id)
        return earlier
    try:
        with transaction.atomic():
            if creator.limited:
                check_active(creator)
            run = Run.objects.create(
                dataset=dataset,
                strategy_id=request.strategy_id,
                strategy_version=strategies.get(request.strategy_id).version,
                params=request.params,
                seed=request.seed,
                slippage_fees=request.slippage_fees,
                speed=speed,
                input_hash=digest,
                idempotency_key=idempotency_key,
                owner=creator.user,
                client=creator.client[:64],
            )
            # The task commits with the run, or neither does.
            lifecycle.enqueue(run.run_id)
    except IntegrityError:
        # A concurrent request inserted the same inputs or key first.
        earlier = find_earlier(digest, idempotency_key)
        if earlier is None:
            raise
        return earlier
    return Created(run.run_id, new=True)


def check_active(creator: Creator) -> None:
    """OverQuota if the creator has RUNS_MAX_ACTIVE runs QUEUED or RUNNING already."""
    check_quota(Run.objects.all(), creator, settings.RUNS_MAX_ACTIVE, "runs")


def check_quota(rows, creator: Creator, limit: int, what: str) -> None:
    """OverQuota if `limit` (0: none) of the creator's rows (runs, sweeps) are QUEUED or
    RUNNING already."""
    if limit <= 0:
        return
    active = rows.filter(status__in=(Run.Status.QUEUED, Run.Status.RUNNING))
    if creator.user is not None:
        active = active.filter(owner=creator.user)
    else:
        active = active.filter(owner__isnull=True, client=creator.client[:64])
    count = active.count()
    if count >= limit:
        raise OverQuota(
            f"{count} of your {what} are QUEUED or RUNNING, the most at once: wait for one "
            "to finish, or cancel one",
            limit,
            10,
        )


def find_earlier(digest: str, idempotency_key: str | None) -> Created | None:
    """The earlier run this create repeats: same key (same inputs), or same inputs."""
    if idempotency_key is not None:
        keyed = (
            Run.objects.filter(idempotency_key=idempotency_key)
            .values_list("run_id", "input_hash")
            .first()
        )
        if keyed is not None:
            run_id, keyed_digest = keyed
            if keyed_digest != digest:
                raise IdempotencyConflict(run_id)
            return Created(run_id, new=False)
    run_id = Run.objects.filter(input_hash=digest).values_list("run_id", flat=True).first()
    return Created(run_id, new=False) if run_id is not None else None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a run listing: run rows, their datasets' rows by id, and the total."""

    rows: list[dict[str, Any]]
    datasets: dict[str, dict[str, Any]]
    total: int


async def list_runs(query: RunQuery, user: access.User) -> Page:
    """One page of runs matching the query, and how many match in all.

    Three queries whatever the page size: the count, the page (runs with their metrics,
    as rows), and the page's datasets. Datasets are filtered in a subquery and fetched
    apart rather than joined, so that the page is read in the order of a run index:
    SQLite would otherwise loop over the few datasets first and sort every run.
    """
    runs = access.visible_runs(Run.objects.all(), user)
    datasets = Dataset.objects.all()
    if query.symbol is not None:
        datasets = datasets.filter(symbol=query.symbol)
    if query.from_date is not None:
        datasets = datasets.filter(from_date__gte=query.from_date)
    if query.to_date is not None:
        datasets = datasets.filter(to_date__lte=query.to_date)
    if datasets.query.has_filters():
        runs = runs.filter(dataset__in=datasets.values("pk"))
    if query.strategy_id is not None:
        runs = runs.filter(strategy_id=query.strategy_id)
    if query.status is not None:
        runs = runs.filter(status=query.status)
    tie_break = "run_id" if query.order == "created_at" else "-run_id"
    page = runs.order_by(query.order, tie_break)[query.offset : query.offset + query.limit]

    def fetch() -> Page:
        rows = list(page.values(*RUN_SUMMARY_FIELDS))
        ids = {row["dataset_id"] for row in rows}
        found = Dataset.objects.filter(pk__in=ids).values(*DATASET_SUMMARY_FIELDS)
        return Page(rows, {d["dataset_id"]: d for d in found}, runs.count())

    # One trip to the database thread for all three queries, rather than one per query.
    return await sync_to_async(fetch)()


async def run_owner(run_id: str) -> tuple[bool, int | None]:
    """(whether the run exists, its owner's id): what access needs, in one small query."""
    row = await Run.objects.filter(pk=run_id).values_list("owner_id").afirst()
    return (False, None) if row is None else (True, row[0])


async def get_run(run_id: str) -> Run | None:
    """The run with its dataset and metrics, or None (one query)."""
    return (
        await Run.objects.select_related("dataset", "metrics", "owner").filter(pk=run_id).afirst()
    )


@dataclass(frozen=True, slots=True)
class DatasetPage:
    """One page of a dataset listing, each with its number of runs, and the total."""

    items: list[tuple[Dataset, int]]
    total: int


async def list_datasets(query: DatasetQuery, user: access.User) -> DatasetPage:
    """One page of the user's datasets by id, with how many runs each has (two queries)."""
    datasets = access.visible_datasets(Dataset.objects.all(), user)
    if query.symbol is not None:
        datasets = datasets.filter(symbol=query.symbol)
    if query.interval is not None:
        datasets = datasets.filter(interval=query.interval)
    page = datasets.annotate(run_count=Count("runs")).select_related("owner").order_by("dataset_id")
    page = page[query.offset : query.offset + query.limit]

    def fetch() -> DatasetPage:
        return DatasetPage([(d, d.run_count) for d in page], datasets.count())

    return await sync_to_async(fetch)()


async def get_dataset(dataset_id: str) -> tuple[Dataset, int] | None:
    """The dataset and its number of runs, or None."""
    found = await (
        Dataset.objects.filter(pk=dataset_id)
        .annotate(run_count=Count("runs"))
        .select_related("owner")
        .afirst()
    )
    return None if found is None else (found, found.run_count)
