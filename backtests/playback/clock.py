"""The playback clock, shared by the socket's producer and the SSE stream.

A producer's first tick is at once, when playback (re)starts; then one every 1 / FPS, on
the process's grid: a point every 1 / (FPS x PHASES) of loop time, each producer on one
phase (every PHASES-th point), its second tick at the first point of its phase at least
1 / FPS after its first. At tick k (0, 1, 2...), floor((k + 1) x bars_per_tick) bars
past the starting position are due. A frame is due at a tick when at least one new bar
is; it covers every due bar not sent yet. Two plays of one run at one speed from one
position therefore make identical frames. A tick that passed while the caller was still
sending (a slow client) or the loop was late sends nothing: it is counted as missed, and
its bars go into the next frame.

Why a grid: the producers due at one point share one timer and wake in one turn of the
event loop. A timer per producer (500 viewers: 15,000 timers a second, each its own
wake-up of the loop) cost more CPU than building the frames. Why phases, and a new
producer on the phase with the fewest: sockets that start together (a class told to
press play) would otherwise send in one burst, and the last of 500 would wait for the
other 499 at every tick; spread evenly, a tick's sends take turns over its 1 / FPS.
"""

import asyncio
import math
import weakref
from collections.abc import AsyncIterator

from backtests.playback.frames import FPS, bars_per_tick
from backtests.playback.run_data import RunData

Due = tuple[int, int, int]  # first bar, last bar, ticks missed since the previous frame
PHASES = 8  # grid points per tick
POINTS_PER_SECOND = FPS * PHASES


class Ticker:
    """One event loop's grid: point n is at loop time n / (FPS x PHASES); the producers
    waiting for a point share its timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: dict[int, list[asyncio.Future]] = {}
        self.producers = [0] * PHASES  # how many producers each phase has

    def join(self) -> int:
        """A phase for a new producer: the one with the fewest."""
        phase = self.producers.index(min(self.producers))
        self.producers[phase] += 1
        return phase

    def leave(self, phase: int) -> None:
        """A producer of this phase has stopped."""
        self.producers[phase] -= 1

    def at(self, point: int) -> asyncio.Future:
        """A future of the caller's own, done at grid point `point` (a cancelled caller
        cancels only its own)."""
        future = self.loop.create_future()
        waiters = self.waiting.get(point)
        if waiters is None:
            waiters = self.waiting[point] = []
            self.loop.call_at(point / POINTS_PER_SECOND, self.fire, point)
        waiters.append(future)
        return future

    def fire(self, point: int) -> None:
        """Wake every producer waiting for this point."""
        for future in self.waiting.pop(point):
            if not future.done():
                future.set_result(None)


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def ticker() -> Ticker:
    """The running loop's ticker (tests run several loops, one after another)."""
    loop = asyncio.get_running_loop()
    found = _TICKERS.get(loop)
    if found is None:
        found = _TICKERS[loop] = Ticker(loop)
    return found


async def schedule(
    data: RunData, position: int, speed: float, idle_seconds: float | None = None
) -> AsyncIterator[Due | None]:
    """Yield each frame's (first, last, missed) from `position` to the last bar; and None
    when no frame was due for `idle_seconds` (a heartbeat's turn), if given."""
    grid = ticker()
    loop = grid.loop
    per_tick = bars_per_tick(speed, data.bar_seconds)
    last_bar, last_sent = data.bars - 1, position - 1
    last_yield = loop.time()
    phase = grid.join()
    # The first point of the phase at or after the start: tick k (k >= 1) is at point
    # base + k x PHASES.
    base = math.ceil(last_yield * POINTS_PER_SECOND)
    base += (phase - base) % PHASES
    tick, missed = -1, 0
    try:
        while last_sent < last_bar:
            tick += 1
            if tick > 0:
                point = base + tick * PHASES
                if point / POINTS_PER_SECOND > loop.time():
                    await grid.at(point)
                else:
                    behind = (int(loop.time() * POINTS_PER_SECOND) - point) // PHASES
                    if behind > 0:
                        missed += behind
                        tick += behind
            due = min(position + math.floor((tick + 1) * per_tick) - 1, last_bar)
            if due > last_sent:
                yield last_sent + 1, due, missed
                last_sent, missed, last_yield = due, 0, loop.time()
            elif idle_seconds is not None and loop.time() - last_yield >= idle_seconds:
                yield None
                last_yield = loop.time()
    finally:
        grid.leave(phase)
