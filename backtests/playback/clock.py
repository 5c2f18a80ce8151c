"""The playback clock, shared by the socket's producer and the SSE stream.

Ticks at FPS a second from the moment playback (re)starts, the first at once: at tick k
(0, 1, 2...), floor((k + 1) x bars_per_tick) bars past the starting position are due. A
frame is due at a tick when at least one new bar is; it covers every due bar not sent
yet. Two plays of one run at one speed from one position therefore make identical
frames. A tick that passed while the caller was still sending (a slow client) or the loop
was late sends nothing: it is counted as missed, and its bars go into the next frame.
"""

import asyncio
import math
from collections.abc import AsyncIterator

from backtests.playback.frames import FPS, bars_per_tick
from backtests.playback.run_data import RunData

Due = tuple[int, int, int]  # first bar, last bar, ticks missed since the previous frame


async def schedule(
    data: RunData, position: int, speed: float, idle_seconds: float | None = None
) -> AsyncIterator[Due | None]:
    """Yield each frame's (first, last, missed) from `position` to the last bar; and None
    when no frame was due for `idle_seconds` (a heartbeat's turn), if given."""
    loop = asyncio.get_running_loop()
    per_tick = bars_per_tick(speed, data.bar_seconds)
    last_bar, last_sent = data.bars - 1, position - 1
    start = last_yield = loop.time()
    tick, missed = -1, 0
    while last_sent < last_bar:
        tick += 1
        delay = start + tick / FPS - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind = int((loop.time() - start) * FPS)
            if behind > tick:
                missed += behind - tick
                tick = behind
        due = min(position + math.floor((tick + 1) * per_tick) - 1, last_bar)
        if due > last_sent:
            yield last_sent + 1, due, missed
            last_sent, missed, last_yield = due, 0, loop.time()
        elif idle_seconds is not None and loop.time() - last_yield >= idle_seconds:
            yield None
            last_yield = loop.time()
