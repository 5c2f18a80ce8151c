"""Sockets' first lookups of their run's status: batched into one query, each answered."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from backtests.playback import run_watch
from tests.catalog_factories import make_dataset, make_run

pytestmark = pytest.mark.django_db(transaction=True)

NO_RUN = "01HZX3J9K2QZ8T5V6W7X8Y9Z0A"


@pytest.fixture(autouse=True)
def close_connections():
    yield
    connections.close_all()


@pytest.fixture
def queries(monkeypatch) -> list[list[str]]:
    """The ids of each status query, as made."""
    made: list[list[str]] = []
    real = run_watch.fetch_statuses
    monkeypatch.setattr(run_watch, "fetch_statuses", lambda ids: made.append(ids) or real(ids))
    return made


async def test_lookups_asked_together_share_one_query(queries) -> None:
    dataset = await sync_to_async(make_dataset)()
    queued = await sync_to_async(make_run)(dataset, status="QUEUED")
    done = await sync_to_async(make_run)(dataset, status="DONE")
    asked = [queued.run_id, done.run_id, NO_RUN] * 20
    answers = await asyncio.gather(*map(run_watch.lookup_status, asked))
    assert answers == ["QUEUED", "DONE", None] * 20
    assert len(queries) == 1 and sorted(queries[0]) == sorted({*asked})


async def test_a_lookup_asked_while_a_query_runs_waits_for_the_next(monkeypatch) -> None:
    made, started, release = [], threading.Event(), threading.Event()
    real = run_watch.fetch_statuses

    def slow(ids: list[str]) -> dict[str, str]:
        made.append(ids)
        started.set()
        release.wait(5)
        return real(ids)

    monkeypatch.setattr(run_watch, "fetch_statuses", slow)
    first = asyncio.create_task(run_watch.lookup_status(NO_RUN))
    assert await asyncio.to_thread(started.wait, 5)  # the first query is running
    second = asyncio.create_task(run_watch.lookup_status("01HZX3J9K2QZ8T5V6W7X8Y9Z0B"))
    await asyncio.sleep(0.01)
    release.set()
    assert await first is None and await second is None
    assert made == [[NO_RUN], ["01HZX3J9K2QZ8T5V6W7X8Y9Z0B"]]


async def test_a_socket_that_leaves_while_waiting_leaves_the_others_answered(queries) -> None:
    leaving = asyncio.create_task(run_watch.lookup_status(NO_RUN))
    staying = asyncio.create_task(run_watch.lookup_status(NO_RUN))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying is None
    assert leaving.cancelled()


async def test_a_failed_query_fails_its_lookups_and_the_next_ones_are_answered(
    monkeypatch,
) -> None:
    real = run_watch.fetch_statuses
    monkeypatch.setattr(run_watch, "fetch_statuses", lambda ids: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        await run_watch.lookup_status(NO_RUN)
    monkeypatch.setattr(run_watch, "fetch_statuses", real)
    assert await run_watch.lookup_status(NO_RUN) is None


async def test_many_ids_are_looked_up_a_batch_a_query(queries, monkeypatch) -> None:
    monkeypatch.setattr(run_watch, "LOOKUP_BATCH", 7)
    ids = [f"01HZX3J9K2QZ8T5V6W7X8Y9{n:03d}" for n in range(20)]
    assert await asyncio.gather(*map(run_watch.lookup_status, ids)) == [None] * 20
    assert [len(batch) for batch in queries] == [7, 7, 6]
