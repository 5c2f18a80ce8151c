"""Playback on the socket: frames, play, pause, seek, speed, the end, errors, the run cache."""

import asyncio
import json
from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client as SyncClient

from backtests.catalog.bars_import import store_bars
from backtests.engine import bars as engine_bars
from backtests.engine import synthetic
from backtests.jobs.execute import execute
from backtests.models import Run
from backtests.playback import clock, frames
from backtests.playback.run_data import CACHE
from tests.catalog_factories import make_run
from tests.conftest import communicator

pytestmark = pytest.mark.django_db(transaction=True)

# 100 bars a tick at 30 ticks a second: the 8 sessions (3,120 bars) in about a second.
FAST = frames.FPS * 60 * 100


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    settings.WS_HEARTBEAT_INTERVAL = 60  # no heartbeat among the frames
    CACHE.clear()
    yield
    CACHE.clear()
    connections.close_all()


@pytest.fixture
def done_run():
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 10))
    dataset = store_bars("AAPL-1m", series, "AAPL").dataset
    run = make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20}, speed=FAST)
    assert execute(run.run_id, "test") == "DONE"
    return Run.objects.select_related("dataset").get(pk=run.pk)


def arrays(run):
    bars = engine_bars.load(django_settings.DATA_DIR / run.dataset.bars_path)
    equity = pq.read_table(django_settings.ARTIFACTS_DIR / run.equity_path).column("equity")
    fills = pq.read_table(django_settings.ARTIFACTS_DIR / run.fills_path).to_pylist()
    return bars, equity.to_numpy(), fills


async def ctrl(ws, cmd: str, **fields) -> str:
    """Send a ctrl message and return its echo (the acknowledgement)."""
    text = json.dumps({"t": "ctrl", "cmd": cmd, **fields})
    await ws.send_to(text_data=text)
    assert await ws.receive_from(timeout=5) == text
    return text


async def until_end(ws) -> list[dict]:
    """Every frame up to the end frame."""
    received = []
    while True:
        message = json.loads(await ws.receive_from(timeout=5))
        if message["t"] == "end":
            return received
        assert message["t"] == "frame", message
        received.append(message)


async def open_socket(run):
    ws = communicator(f"/backtests/{run.run_id}/ws")
    assert (await ws.connect())[0]
    return ws


async def test_play_sends_consecutive_frames_to_the_end(done_run) -> None:
    bars, equity, fills = arrays(done_run)
    ws = await open_socket(done_run)
    await ctrl(ws, "play")
    received = await until_end(ws)
    first = 0
    for f in received:
        i, n = f["i"], f["n"]
        assert i - n + 1 == first  # no gap, no overlap
        window = slice(first, i + 1)
        assert f["ohlc"] == {
            "o": bars.open[first],
            "h": bars.high[window].max(),
            "l": bars.low[window].min(),
            "c": bars.close[i],
            "v": pytest.approx(bars.volume[window].sum()),
        }
        assert f["ts"] == frames.iso(bars.ts[i])
        assert f["equity"] == equity[i]
        assert f["metrics"]["total_return"] == pytest.approx(equity[i] / 100_000 - 1)
        covered = {frames.iso(bars.ts[b]) for b in range(first, i + 1)}
        expected = [f2 for f2 in fills if frames.iso(f2["ts"].timestamp() * 10**9) in covered]
        assert [o["price"] for o in f["orders"]] == [f2["price"] for f2 in expected]
        first = i + 1
    assert first == len(bars)
    assert sum(len(f["orders"]) for f in received) == len(fills)
    await ws.disconnect()


async def test_frames_come_at_most_thirty_a_second_each_with_new_bars(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "speed", val=60 * 30 * 2)  # two bars a tick
    started = asyncio.get_running_loop().time()
    await ctrl(ws, "play")
    received = [json.loads(await ws.receive_from(timeout=5)) for _ in range(15)]
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed >= 14 / frames.FPS  # not faster than 30 a second
    assert all(f["n"] == 2 for f in received if f["dropped"] == 0)
    await ctrl(ws, "pause")
    await ws.disconnect()


async def playing(run):
    """A socket playing the run at one bar a tick, its first frame received."""
    ws = await open_socket(run)
    await ctrl(ws, "speed", val=60 * 30)
    await ctrl(ws, "play")
    await ws.receive_from(timeout=5)
    return ws


async def test_pause_stops_frames_after_its_echo(done_run) -> None:
    ws = await playing(done_run)
    pause = json.dumps({"t": "ctrl", "cmd": "pause"})
    await ws.send_to(text_data=pause)
    while (message := await ws.receive_from(timeout=5)) != pause:
        assert json.loads(message)["t"] == "frame"  # frames before the echo are fine
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_two_plays_from_one_position_send_identical_frames(done_run) -> None:
    plays = []
    for _ in range(2):
        ws = await open_socket(done_run)
        await ctrl(ws, "seek", pos=100)
        await ws.receive_from(timeout=5)  # the paused seek's frame
        await ctrl(ws, "speed", val=60 * 30 * 7)
        await ctrl(ws, "play")
        plays.append([await ws.receive_from(timeout=5) for _ in range(20)])
        await ctrl(ws, "pause")
        await ws.disconnect()
    assert plays[0] == plays[1]
    assert json.loads(plays[0][0])["i"] == 107  # bars 101-107: the seek showed bar 100


async def test_seek_paused_sends_one_frame_and_snaps_times(done_run) -> None:
    bars, _, _ = arrays(done_run)
    ws = await open_socket(done_run)
    await ctrl(ws, "seek", pos=42)
    frame = json.loads(await ws.receive_from(timeout=5))
    assert (frame["i"], frame["n"]) == (42, 1)
    # 2023-03-04 is a Saturday: the first bar at or after it is Monday's open.
    await ctrl(ws, "seek", pos="2023-03-04T00:00:00Z")
    frame = json.loads(await ws.receive_from(timeout=5))
    assert frame["ts"] == "2023-03-06T14:30:00Z" and frame["n"] == 1
    assert frame["i"] == int(
        np.searchsorted(bars.ts, np.datetime64("2023-03-06T14:30", "ns").astype(np.int64))
    )
    await ws.disconnect()


async def test_seek_out_of_range_is_a_range_error(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "seek", pos=10**6)
    err = json.loads(await ws.receive_from(timeout=5))
    assert err["code"] == "RANGE"
    assert err["details"] == {
        "bars": 3120,
        "first": "2023-03-01T14:30:00Z",
        "last": "2023-03-10T20:59:00Z",
    }
    await ctrl(ws, "seek", pos="2024-01-01T00:00:00Z")
    assert json.loads(await ws.receive_from(timeout=5))["code"] == "RANGE"
    await ws.disconnect()


async def test_after_the_end_play_starts_again_from_bar_zero(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "seek", pos=3100)
    await ws.receive_from(timeout=5)
    await ctrl(ws, "play")
    await until_end(ws)
    await ctrl(ws, "play")
    again = json.loads(await ws.receive_from(timeout=5))
    assert again["i"] - again["n"] + 1 == 0
    await ctrl(ws, "pause")
    await ws.disconnect()


async def test_play_on_a_run_that_is_not_done_is_a_range_error(done_run) -> None:
    queued = await sync_to_async(make_run)(done_run.dataset, status="QUEUED")
    ws = await open_socket(queued)
    await ws.receive_from(timeout=5)  # its status: it waits for the run
    await ctrl(ws, "play")
    err = json.loads(await ws.receive_from(timeout=5))
    assert (err["code"], err["details"]) == ("RANGE", {"status": "QUEUED"})
    await ws.disconnect()


async def test_an_id_that_names_no_run(db) -> None:
    ws = communicator("/backtests/01HM65JQM043J5BD14TQ8NBVDX/ws")
    assert (await ws.connect())[0]
    for cmd, fields in (("play", {}), ("seek", {"pos": 3})):
        await ctrl(ws, cmd, **fields)
        assert json.loads(await ws.receive_from(timeout=5))["code"] == "RUN_NOT_FOUND"
    for cmd, fields in (("pause", {}), ("speed", {"val": 60})):
        await ctrl(ws, cmd, **fields)  # the echo only
        assert await ws.receive_nothing(timeout=0.1)
    await ws.disconnect()


async def test_fast_play_pause_never_makes_two_producers(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "speed", val=60 * 30)
    for _ in range(30):
        await ws.send_to(text_data='{"t":"ctrl","cmd":"play"}')
        await ws.send_to(text_data='{"t":"ctrl","cmd":"pause"}')
    received = []
    while not await ws.receive_nothing(timeout=0.3):
        received.append(json.loads(await ws.receive_from()))
    assert received[-1] == {"t": "ctrl", "cmd": "pause"}
    indexes = [m["i"] for m in received if m["t"] == "frame"]
    assert indexes == sorted(set(indexes))  # one producer: every bar once, in order
    await ws.disconnect()


async def test_a_storm_of_seeks_resumes_from_the_last_one(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "speed", val=60 * 30)
    await ctrl(ws, "play")
    for pos in range(500, 540):
        await ws.send_to(text_data=json.dumps({"t": "ctrl", "cmd": "seek", "pos": pos}))
    last_echo = json.dumps({"t": "ctrl", "cmd": "seek", "pos": 539})
    while await ws.receive_from(timeout=5) != last_echo:
        pass
    following = [json.loads(await ws.receive_from(timeout=5)) for _ in range(3)]
    assert [f["i"] for f in following] == [539, 540, 541]
    await ctrl(ws, "pause")
    await ws.disconnect()


async def test_a_speed_over_the_maximum_plays_at_the_maximum(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "speed", val=1e12)
    await ctrl(ws, "play")
    received = await until_end(ws)
    per_tick = frames.bars_per_tick(frames.MAX_SPEED, 60)  # 5,555 bars: all 3,120 at once
    assert per_tick > 3120 and len(received) == 1
    await ws.disconnect()


async def test_sockets_of_one_run_share_one_load(done_run) -> None:
    sockets = [await open_socket(done_run) for _ in range(3)]
    for ws in sockets:
        await ctrl(ws, "seek", pos=1)
        await ws.receive_from(timeout=5)
    assert CACHE.loads == 1 and list(CACHE.runs) == [done_run.run_id]
    for ws in sockets:
        await ws.disconnect()


async def test_leaving_while_playing_stops_the_producer(done_run) -> None:
    ws = await playing(done_run)
    await ws.disconnect()
    await asyncio.sleep(0.1)
    producers = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Player.produce"]
    assert producers == []
    assert clock.ticker().producers == [0] * clock.PHASES  # it left its phase of the grid


async def test_pause_and_seek_leave_the_grid_as_they_found_it(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "speed", val=60 * 30)
    for _ in range(3):
        await ctrl(ws, "play")
        await ws.receive_from(timeout=5)
        assert sum(clock.ticker().producers) == 1
        await ctrl(ws, "seek", pos=10)
        assert json.loads(await ws.receive_from(timeout=5))["i"] >= 10
        assert sum(clock.ticker().producers) == 1  # the seek's producer replaced the play's
        await ctrl(ws, "pause")
        assert clock.ticker().producers == [0] * clock.PHASES
    await ws.disconnect()


async def test_the_cache_keeps_to_its_budget_least_recently_used_out(done_run, settings) -> None:
    other = await sync_to_async(make_run)(done_run.dataset, status="QUEUED")
    await sync_to_async(execute)(other.run_id, "test")
    first = await CACHE.get(done_run.run_id)
    settings.PLAYBACK_CACHE_BYTES = first.nbytes + 1  # room for one run
    await CACHE.get(other.run_id)
    assert list(CACHE.runs) == [other.run_id]
    await CACHE.get(done_run.run_id)
    assert list(CACHE.runs) == [done_run.run_id] and CACHE.loads == 3


async def another_run(done_run) -> Run:
    other = await sync_to_async(make_run)(done_run.dataset, status="QUEUED", speed=FAST)
    assert await sync_to_async(execute)(other.run_id, "test") == "DONE"
    return other


async def test_runs_that_sockets_play_count_against_the_budget(done_run, settings) -> None:
    other = await another_run(done_run)
    first = await CACHE.get(done_run.run_id)
    settings.PLAYBACK_CACHE_BYTES = first.nbytes + 1  # room for one run
    ws = await open_socket(done_run)
    await ctrl(ws, "seek", pos=1)
    await ws.receive_from(timeout=5)
    assert CACHE.holders == {done_run.run_id: 1}
    # The played run cannot be evicted (its socket keeps it alive): the other is refused.
    late = await open_socket(other)
    await ctrl(late, "play")
    refused = json.loads(await late.receive_from(timeout=5))
    assert refused["t"] == "err" and refused["code"] == "BUSY"
    assert "PLAYBACK_CACHE_BYTES" in refused["msg"] and "retry when one ends" in refused["msg"]
    assert list(CACHE.runs) == [done_run.run_id]
    assert CACHE.nbytes <= settings.PLAYBACK_CACHE_BYTES
    # The stream is refused the same way, before it starts.
    response = await sync_to_async(SyncClient().get)(f"/backtests/{other.run_id}/stream")
    assert response.status_code == 503 and response["Retry-After"] == "10"
    assert json.loads(response.content)["error"]["code"] == "BUSY"
    # Once the first socket leaves, its run is let go and the other plays.
    await ws.disconnect()
    assert CACHE.holders == {}
    await ctrl(late, "play")
    assert json.loads(await late.receive_from(timeout=5))["t"] == "frame"
    assert list(CACHE.runs) == [other.run_id] and CACHE.holders == {other.run_id: 1}
    await late.disconnect()


async def test_the_metric_reports_every_run_in_memory(done_run, settings) -> None:
    from prometheus_client import REGISTRY

    other = await another_run(done_run)
    sockets = [await open_socket(run) for run in (done_run, other)]
    for ws in sockets:
        await ctrl(ws, "seek", pos=1)
        await ws.receive_from(timeout=5)
    gauge = REGISTRY.get_sample_value("backtests_playback_cache_bytes")
    assert gauge == CACHE.nbytes == sum(run.nbytes for run in CACHE.runs.values())
    assert len(CACHE.runs) == 2
    for ws in sockets:
        await ws.disconnect()
    assert CACHE.holders == {}


async def test_a_socket_that_leaves_while_its_run_loads_holds_nothing(done_run) -> None:
    from backtests.playback.player import Player

    sent = []

    async def send(text: str) -> None:
        sent.append(text)

    player = Player(done_run.run_id, send)
    loading = asyncio.ensure_future(player.data("play"))
    await asyncio.sleep(0)
    player.stop()  # the socket's clean-up runs while the load is in its thread
    assert await loading is None
    assert CACHE.holders == {} and sent == []


def test_frame_times_are_iso_utc_to_the_second() -> None:
    for text in ("1970-01-01T00:00:00", "2023-03-01T14:30:00", "2024-02-29T23:59:59"):
        ns = int(np.datetime64(text, "ns").astype(np.int64))
        assert frames.iso(ns) == f"{text}Z"


async def test_a_seek_racing_the_end_plays_from_the_seek(done_run) -> None:
    ws = await open_socket(done_run)
    await ctrl(ws, "seek", pos=3110)
    await ws.receive_from(timeout=5)
    await ctrl(ws, "speed", val=60 * 30)  # one bar a tick: the end comes in about 0.3 s
    await ctrl(ws, "play")
    await asyncio.sleep(0.25)
    seek = json.dumps({"t": "ctrl", "cmd": "seek", "pos": 10})
    await ws.send_to(text_data=seek)
    while await ws.receive_from(timeout=5) != seek:
        pass  # frames, and maybe the end, before the seek's echo
    # Still playing when the seek came: frames from bar 10. The end first: playback had
    # paused, and the seek shows bar 10 alone. Either way the next frame starts at 10.
    after = json.loads(await ws.receive_from(timeout=5))
    assert after["t"] == "frame" and after["i"] - after["n"] + 1 == 10
    await ws.send_to(text_data='{"t":"ctrl","cmd":"pause"}')
    await ws.disconnect()
