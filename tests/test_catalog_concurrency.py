"""Concurrent identical creates make one run: never two, never a 500."""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from backtests.models import Run
from tests.catalog_factories import CREATE_BODY, make_dataset

BODY = CREATE_BODY

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_worker_thread_connections():
    """Close the connection the async ORM opened in its worker thread, so the test DB can go."""
    yield
    await sync_to_async(connections.close_all)()


async def post_many(n: int, headers: dict | None = None) -> list:
    """Send `n` identical creates at once, each from its own client."""
    clients = [AsyncClient() for _ in range(n)]
    return await asyncio.gather(
        *(
            c.post("/backtests", json.dumps(BODY), content_type="application/json", headers=headers)
            for c in clients
        )
    )


@pytest.mark.parametrize("headers", [None, {"Idempotency-Key": "same-key"}])
async def test_concurrent_identical_creates_make_one_run(headers: dict | None) -> None:
    await sync_to_async(make_dataset)()
    responses = await post_many(8, headers)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [202]
    run_ids = {json.loads(r.content)["run_id"] for r in responses}
    assert len(run_ids) == 1
    assert await Run.objects.acount() == 1


async def test_losing_an_insert_race_returns_the_winner(monkeypatch) -> None:
    # Force the race: both requests miss the look-up, both insert; one insert fails.
    from backtests.catalog import queries as catalog

    await sync_to_async(make_dataset)()
    real_find = catalog.find_earlier
    calls = {"n": 0}

    def miss_first_lookups(digest, key):
        calls["n"] += 1
        return None if calls["n"] <= 2 else real_find(digest, key)

    monkeypatch.setattr(catalog, "find_earlier", miss_first_lookups)
    first = await AsyncClient().post(
        "/backtests", json.dumps(BODY), content_type="application/json"
    )
    second = await AsyncClient().post(
        "/backtests", json.dumps(BODY), content_type="application/json"
    )
    assert (first.status_code, second.status_code) == (202, 200)
    assert json.loads(second.content)["run_id"] == json.loads(first.content)["run_id"]
    assert await Run.objects.acount() == 1
