"""The playback clock's shared grid and the frame texts shared by the sockets of a run."""

import asyncio
import math
from types import SimpleNamespace

import numpy as np
import orjson

from backtests.playback import clock, frames
from backtests.playback.run_data import RunData


def run_data(bars: int = 50) -> RunData:
    """A small run: one-minute bars, a fill every tenth bar."""
    prices = np.linspace(100.0, 110.0, bars)
    fills = np.arange(0, bars, 10)
    return RunData(
        run_id="01HM65JQM043J5BD14TQ8NBVDK",
        speed=6000,
        ts=np.arange(bars, dtype=np.int64) * 60 * 10**9 + 1_677_681_000 * 10**9,
        open=prices,
        high=prices + 1,
        low=prices - 1,
        close=prices + 0.5,
        volume=np.full(bars, 1000.0),
        equity=np.full(bars, 100_000.0),
        position=np.zeros(bars),
        total_return=np.zeros(bars),
        max_drawdown=np.zeros(bars),
        fill_bar=fills,
        fill_side=["buy" if n % 2 == 0 else "sell" for n in range(len(fills))],
        fill_qty=np.full(len(fills), 10.0),
        fill_price=prices[fills],
        fill_fee=np.full(len(fills), 0.5),
        bar_seconds=60.0,
    )


async def test_waiters_for_one_grid_point_share_one_timer(monkeypatch) -> None:
    loop = asyncio.get_running_loop()
    timers = []
    real_call_at = loop.call_at
    monkeypatch.setattr(loop, "call_at", lambda *a: timers.append(a) or real_call_at(*a))
    grid = clock.ticker()
    point = math.ceil(loop.time() * clock.POINTS_PER_SECOND) + 2
    waiters = [grid.at(point) for _ in range(3)]
    later = grid.at(point + 1)
    assert len(timers) == 2  # one per point, not one per waiter
    await asyncio.gather(*waiters)
    assert loop.time() >= point / clock.POINTS_PER_SECOND - 0.001
    assert not later.done()
    await later
    assert grid.waiting == {}


async def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    loop = asyncio.get_running_loop()
    grid = clock.ticker()
    point = math.ceil(loop.time() * clock.POINTS_PER_SECOND) + 2
    gone, staying = grid.at(point), grid.at(point)
    gone.cancel()
    await asyncio.wait_for(staying, timeout=1)
    assert gone.cancelled() and staying.result() is None


async def test_each_event_loop_has_its_own_grid() -> None:
    async def grid_of_this_loop() -> clock.Ticker:
        return clock.ticker()

    here = clock.ticker()
    assert clock.ticker() is here
    elsewhere = await asyncio.to_thread(asyncio.run, grid_of_this_loop())
    assert elsewhere is not here and elsewhere.loop is not here.loop


async def test_ticks_after_the_first_are_on_the_grid_a_tick_apart() -> None:
    data = SimpleNamespace(bars=20, bar_seconds=60.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    times, dues = [], []
    async for due in clock.schedule(data, 0, 60 * frames.FPS * 2):  # two bars a tick
        times.append(loop.time())
        dues.append(due)
    assert times[0] - started < 0.005  # the first at once
    assert times[1] - times[0] >= 1 / frames.FPS - 0.001
    assert times[1] - times[0] < 2 / frames.FPS + 0.02  # the first point of its phase
    # Never ahead of the schedule: the k-th tick after the second is k / FPS after it, or
    # later (a late tick is not made up for by the next one coming late too).
    assert all(t - times[1] >= k / frames.FPS - 0.002 for k, t in enumerate(times[1:]))
    assert [(first, last) for first, last, _ in dues] == [(b, b + 1) for b in range(0, 20, 2)]


async def test_a_grid_shared_by_many_schedules_keeps_each_one_deterministic() -> None:
    data = SimpleNamespace(bars=40, bar_seconds=60.0)

    async def play(delay: float) -> list:
        await asyncio.sleep(delay)
        return [due[:2] async for due in clock.schedule(data, 3, 60 * 30 * 2.5)]

    plays = await asyncio.gather(*(play(n / 97) for n in range(12)))
    assert all(p == plays[0] for p in plays)  # same start, same speed: the same frames
    assert plays[0][0] == (3, 4)  # floor(2.5) bars at the first tick
    assert plays[0][-1][1] == 39


async def test_producers_that_start_together_are_spread_over_the_phases() -> None:
    data = SimpleNamespace(bars=10, bar_seconds=60.0)
    grid = clock.ticker()
    points: list[int] = []
    real_at = grid.at

    def at(point: int) -> asyncio.Future:
        points.append(point % clock.PHASES)
        return real_at(point)

    grid.at = at
    players = [clock.schedule(data, 0, 60 * frames.FPS) for _ in range(2 * clock.PHASES)]

    async def step(player) -> None:
        await anext(player)

    await asyncio.gather(*map(step, players))  # the first frames, at once
    assert grid.producers == [2] * clock.PHASES
    await asyncio.gather(*map(step, players))  # the second ones, on the grid
    assert sorted(points) == sorted(list(range(clock.PHASES)) * 2)
    for player in players:
        await player.aclose()
    assert grid.producers == [0] * clock.PHASES  # each one left its phase


def test_a_frame_text_is_built_once_per_bars_and_carries_each_sockets_dropped() -> None:
    data = run_data()
    for dropped in (0, 7, 12345):
        text = frames.frame(data, 8, 12, dropped)
        assert text == orjson.dumps(frames.frame_dict(data, 8, 12, dropped)).decode()
        assert orjson.loads(text)["dropped"] == dropped
    assert list(data.frame_texts) == [(8, 12)]
    assert orjson.loads(frames.frame(data, 8, 12, 0))["orders"][0]["ts"] == frames.iso(data.ts[10])


def test_frame_texts_are_bounded_least_recently_used_out(monkeypatch) -> None:
    monkeypatch.setattr(frames, "FRAME_TEXTS", 3)
    data = run_data()
    for first in range(4):
        frames.frame(data, first, first, 0)
    frames.frame(data, 1, 1, 0)  # used again: kept
    frames.frame(data, 4, 4, 0)
    assert list(data.frame_texts) == [(3, 3), (1, 1), (4, 4)]
