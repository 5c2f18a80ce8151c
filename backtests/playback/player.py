"""One socket's playback: its position, speed and state, and its one frame producer.

Frames follow the clock (clock.py); ticks missed while the previous frame was still being
written, or the loop was late, are counted in the frames' `dropped`.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from backtests.errors import ErrorCode
from backtests.playback import clock, frames
from backtests.playback.consumer_base import PeerGone
from backtests.playback.protocol import Ctrl, err_frame
from backtests.playback.run_data import (
    CACHE,
    PlaybackFull,
    RunData,
    RunNotFound,
    RunNotPlayable,
    Unplayable,
)
from project import metrics

Send = Callable[[str], Awaitable[None]]
logger = logging.getLogger(__name__)


class Player:
    """Play, pause, seek and speed for one socket of one run."""

    def __init__(self, run_id: str, send: Send, is_run_id: bool = True) -> None:
        self.run_id = run_id
        self.send = send
        # Known to name no run: an id that is no run id, or a run that was not found (run
        # ids are made by the server, never reused): answered without a query.
        self.missing = not is_run_id
        self.position = 0  # the next bar to send
        self.speed: float | None = None  # None: the run's own speed
        self.playing = False
        self.dropped = 0
        self.producer: asyncio.Task | None = None
        self.loaded: RunData | None = None  # shared with every socket of the run
        self.stopped = False

    async def before_echo(self, ctrl: Ctrl) -> None:
        """Stop the producer before a command's echo: no frame follows a pause's echo,
        and frames after a seek's or a speed's echo are the new ones."""
        if ctrl.cmd != "play":
            await self.stop_producer()

    async def after_echo(self, ctrl: Ctrl) -> None:
        """The command's effect, after its echo."""
        if ctrl.cmd == "pause":
            self.playing = False
            return
        if ctrl.cmd == "speed":
            self.speed = float(ctrl.message["val"])
            self.resume()
            return
        data = await self.data(ctrl.cmd)
        if data is None:
            self.playing = False
            return
        if ctrl.cmd == "play":
            if self.position >= data.bars:
                self.position = 0  # after the end, play starts again
            self.playing = True
            self.resume()
        else:
            await self.seek(data, ctrl.message["pos"])

    async def data(self, cmd: str) -> RunData | None:
        """The run's arrays, or None after sending the err frame that says why not."""
        try:
            if self.missing:
                raise RunNotFound(self.run_id)
            data = await CACHE.get(self.run_id)
            if self.stopped:
                return None  # the socket left while the run was loading: hold nothing
            if self.loaded is None:
                CACHE.hold(data)  # released by stop(), the socket's one clean-up path
                self.loaded = data
            return self.loaded
        except RunNotFound:
            self.missing = True
            await self.error(ErrorCode.RUN_NOT_FOUND, f"no run {self.run_id}", {})
        except RunNotPlayable as not_done:
            await self.error(
                ErrorCode.RANGE,
                f"run {self.run_id} is {not_done.status}: only a DONE run can be played",
                {"status": not_done.status},
            )
        except Unplayable as unplayable:
            await self.error(unplayable.code, str(unplayable), {})
        except PlaybackFull as full:
            await self.error(ErrorCode.BUSY, str(full), {})
        return None

    async def error(self, code: ErrorCode, msg: str, details: dict) -> None:
        """Send an err frame for a command that cannot take effect, and count it."""
        metrics.WS_ERRORS.labels(code.value).inc()
        await self.send(err_frame(code, msg, details))

    async def seek(self, data: RunData, pos: int | str) -> None:
        """Move to a bar index, or to the first bar at or after a UTC time."""
        index = data.bar_at(pos)
        if index >= data.bars:
            await self.error(
                ErrorCode.RANGE,
                f"position {pos} is past the run's last bar",
                frames.range_details(data),
            )
            self.resume()  # a refused seek leaves playback as it was
            return
        self.position = index
        if self.playing:
            self.resume()
        else:
            # Paused: one frame for the new position, so that a viewer can draw it.
            await self.send(frames.frame(data, index, index, self.dropped))
            self.position = index + 1

    def resume(self) -> None:
        """Start the producer if playing and none runs (never two)."""
        if not self.playing or (self.producer is not None and not self.producer.done()):
            return
        if self.loaded is None:
            return
        self.producer = asyncio.get_running_loop().create_task(self.produce(self.loaded))
        self.producer.add_done_callback(self.produced)

    def produced(self, task: asyncio.Task) -> None:
        """Log a producer that failed for another reason than a gone client."""
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, PeerGone):
            logger.error("frame producer of backtest %s failed", self.run_id, exc_info=error)

    async def stop_producer(self) -> None:
        """Cancel the producer and wait until it has stopped."""
        producer, self.producer = self.producer, None
        if producer is not None and not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer

    def stop(self) -> None:
        """The socket's clean-up: cancel the producer, without waiting; release the run."""
        self.playing = False
        self.stopped = True
        if self.producer is not None:
            self.producer.cancel()
            self.producer = None
        if self.loaded is not None:
            CACHE.release(self.run_id)
            self.loaded = None

    async def produce(self, data: RunData) -> None:
        """Send frames on the clock until paused, stopped or at the end (clock.py)."""
        ticks = clock.schedule(data, self.position, self.speed or data.speed)
        async with contextlib.aclosing(ticks):  # it leaves its phase however this ends
            async for first, last, missed in ticks:
                self.dropped += missed
                await self.send(frames.frame(data, first, last, self.dropped))
                self.position = last + 1
        self.playing = False
        await self.send(frames.END_FRAME)
