"""A socket of a QUEUED or RUNNING run receives its statuses as it moves (the polling path)."""

import asyncio
import json
from datetime import date

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from backtests.catalog.bars_import import store_bars
from backtests.engine import synthetic
from backtests.jobs import lifecycle
from backtests.jobs.execute import execute
from backtests.jobs.status import publish
from backtests.playback.run_watch import WATCH
from tests.catalog_factories import make_dataset, make_run
from tests.conftest import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_poll(settings):
    settings.RUN_STATUS_POLL_SECONDS = 0.05
    yield
    connections.close_all()


@pytest.fixture
def queued():
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 10))
    return make_run(store_bars("AAPL-1m", series, "AAPL").dataset, status="QUEUED")


async def statuses(ws, count: int) -> list[str]:
    """The next `count` status frames (heartbeats skipped)."""
    seen = []
    while len(seen) < count:
        frame = json.loads(await ws.receive_from(timeout=5))
        if frame["t"] == "status":
            seen.append(frame["status"])
    return seen


async def test_a_viewer_sees_its_run_go_from_queued_to_done(queued) -> None:
    ws = communicator(f"/backtests/{queued.run_id}/ws")
    assert (await ws.connect())[0]
    assert await statuses(ws, 1) == ["QUEUED"]
    assert queued.run_id in WATCH.callbacks
    await sync_to_async(lifecycle.claim)(queued.run_id, "w1")
    assert await statuses(ws, 1) == ["RUNNING"]
    await sync_to_async(lifecycle.finish)(queued.run_id, "w1", "ERROR", "stopped by the test")
    assert await statuses(ws, 1) == ["ERROR"]
    assert queued.run_id not in WATCH.callbacks  # a final status ends the watch
    await ws.disconnect()


async def test_a_run_computed_between_two_polls_ends_in_done(queued) -> None:
    ws = communicator(f"/backtests/{queued.run_id}/ws")
    assert (await ws.connect())[0]
    assert await statuses(ws, 1) == ["QUEUED"]
    await sync_to_async(execute)(queued.run_id, "w1")
    # Polling shows the latest status: RUNNING may fall between two polls, DONE never.
    seen = await statuses(ws, 1)
    if seen == ["RUNNING"]:
        seen = await statuses(ws, 1)
    assert seen == ["DONE"]
    await ws.disconnect()


async def test_two_viewers_of_one_run_share_one_watch(queued) -> None:
    first = communicator(f"/backtests/{queued.run_id}/ws")
    second = communicator(f"/backtests/{queued.run_id}/ws")
    assert (await first.connect())[0] and (await second.connect())[0]
    assert await statuses(first, 1) == await statuses(second, 1) == ["QUEUED"]
    assert len(WATCH.callbacks[queued.run_id]) == 2
    await sync_to_async(lifecycle.cancel)(queued.run_id)
    assert await statuses(first, 1) == await statuses(second, 1) == ["CANCELLED"]
    await first.disconnect()
    await second.disconnect()


async def test_a_socket_that_leaves_stops_watching(queued) -> None:
    ws = communicator(f"/backtests/{queued.run_id}/ws")
    assert (await ws.connect())[0]
    await statuses(ws, 1)
    await ws.disconnect()
    assert queued.run_id not in WATCH.callbacks


@pytest.mark.parametrize("status", ["DONE", "ERROR", "CANCELLED"])
async def test_a_finished_run_costs_no_watch(queued, status: str) -> None:
    await type(queued).objects.filter(pk=queued.pk).aupdate(status=status)
    ws = communicator(f"/backtests/{queued.run_id}/ws")
    assert (await ws.connect())[0]
    assert await ws.receive_nothing(timeout=0.2)
    assert queued.run_id not in WATCH.callbacks
    await ws.disconnect()


async def test_an_unknown_run_costs_no_watch() -> None:
    ws = communicator("/backtests/01HM65JQM043J5BD14TQ8NBVDX/ws")
    assert (await ws.connect())[0]
    assert await ws.receive_nothing(timeout=0.2)
    assert not WATCH.callbacks
    await ws.disconnect()


def redis_reachable() -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", 6379)) == 0


@pytest.mark.skipif(not redis_reachable(), reason="needs Redis on 127.0.0.1:6379 (CI has it)")
async def test_sockets_over_redis_each_get_their_runs_statuses(settings) -> None:
    # One process channel in the group of each watched run: every socket gets its run's.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/6", "socket_timeout": 15}]},
        }
    }
    dataset = await sync_to_async(make_dataset)("RACE-1m")
    runs = [await sync_to_async(make_run)(dataset, status="QUEUED") for _ in range(4)]
    sockets = [communicator(f"/backtests/{run.run_id}/ws") for run in runs]
    await asyncio.gather(*(ws.connect() for ws in sockets))
    for ws in sockets:
        assert await statuses(ws, 1) == ["QUEUED"]
    for run in runs:
        await type(run).objects.filter(pk=run.pk).aupdate(status="DONE")
        await sync_to_async(publish)(run.run_id, "DONE")
    for ws in sockets:
        assert await statuses(ws, 1) == ["DONE"]
        await ws.disconnect()


@pytest.mark.skipif(not redis_reachable(), reason="needs Redis on 127.0.0.1:6379 (CI has it)")
async def test_a_status_the_layer_lost_still_arrives_from_the_database(
    settings, monkeypatch
) -> None:
    from backtests.playback import run_watch

    monkeypatch.setattr(run_watch, "CATCH_UP_SECONDS", 0.2)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/6", "socket_timeout": 15}]},
        }
    }
    run = await sync_to_async(make_run)(
        await sync_to_async(make_dataset)("LOST-1m"), status="QUEUED"
    )
    ws = communicator(f"/backtests/{run.run_id}/ws")
    assert (await ws.connect())[0]
    assert await statuses(ws, 1) == ["QUEUED"]
    # DONE recorded, but never published (as when Redis drops a message: a full channel,
    # an expired message): the watch's check of the database delivers it.
    await type(run).objects.filter(pk=run.pk).aupdate(status="DONE")
    assert await statuses(ws, 1) == ["DONE"]
    await ws.disconnect()
