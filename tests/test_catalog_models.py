"""The catalog's rules that the database itself enforces: enums, ranges, uniqueness."""

from datetime import date

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from backtests.models import Run
from tests.catalog_factories import add_metrics, make_dataset, make_run

pytestmark = pytest.mark.django_db


def assert_refused(update) -> None:
    """Assert the database refuses a write (the check constraint, not Python, decides)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        update()


def test_status_enums_are_enforced_by_the_database() -> None:
    dataset = make_dataset()
    run = make_run(dataset)
    assert_refused(lambda: Run.objects.filter(pk=run.pk).update(status="PAUSED"))
    assert_refused(lambda: type(dataset).objects.filter(pk=dataset.pk).update(status="GONE"))


def test_numeric_rules_are_enforced_by_the_database() -> None:
    dataset = make_dataset()
    run = make_run(dataset)
    assert_refused(lambda: Run.objects.filter(pk=run.pk).update(seed=-1))
    assert_refused(lambda: Run.objects.filter(pk=run.pk).update(speed=0))
    assert_refused(lambda: Run.objects.filter(pk=run.pk).update(duration_ms=-5))
    assert_refused(
        lambda: type(dataset).objects.filter(pk=dataset.pk).update(to_date=date(2022, 1, 1))
    )
    assert_refused(lambda: add_metrics(run, hit_rate=1.5))


def test_input_hash_and_idempotency_key_are_unique() -> None:
    dataset = make_dataset()
    run = make_run(dataset, idempotency_key="k")
    assert_refused(lambda: make_run(dataset, input_hash=run.input_hash))
    assert_refused(lambda: make_run(dataset, idempotency_key="k"))
    # Many runs may have no key.
    make_run(dataset)
    make_run(dataset)


def test_a_dataset_with_runs_cannot_be_deleted() -> None:
    dataset = make_dataset()
    make_run(dataset)
    with pytest.raises(ProtectedError):
        dataset.delete()


def test_run_defaults() -> None:
    run = make_run(make_dataset())
    assert run.status == Run.Status.QUEUED
    assert run.speed == 60
    assert len(run.run_id) == 26
    assert run.created_at.tzinfo is not None
