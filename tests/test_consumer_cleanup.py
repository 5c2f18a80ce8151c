"""The consumer's single clean-up path, driven by an ASGI `send` that fails like each server's.

A send to a client that is gone raises: daphne raises autobahn's `Disconnected`, uvicorn
its `ClientDisconnected` (an OSError), or a RuntimeError once the connection is closed.
Each is a disconnect: the clean-up runs once, nothing escapes, and the consumer object
is garbage afterwards.
"""

import asyncio
import gc
import logging
import weakref
from collections.abc import Callable

import pytest
from autobahn.exception import Disconnected
from uvicorn.protocols.utils import ClientDisconnected

from backtests.playback.consumers import PlaybackConsumer
from project import metrics

PLAY = '{"t":"ctrl","cmd":"play"}'
PAUSE = '{"t":"ctrl","cmd":"pause"}'

# A new exception each time, as a server raises (a shared one would keep its traceback).
SERVER_ERRORS = {
    "daphne": lambda: Disconnected("Attempt to send on a closed protocol"),
    "uvicorn": ClientDisconnected,
    "uvicorn-after-close": lambda: RuntimeError(
        "Unexpected ASGI message 'websocket.send', after sending 'websocket.close' "
        "or response already completed."
    ),
}


class Tracked(PlaybackConsumer):
    """The playback consumer, remembered weakly so that a test can see it collected."""

    instances: "weakref.WeakSet[Tracked]" = weakref.WeakSet()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        Tracked.instances.add(self)


class Harness:
    """Runs one consumer as a server would, with a `send` that fails once told to."""

    def __init__(self, error: Callable[[], BaseException]) -> None:
        self.error = error
        self.failing = False
        self.sends = 0
        self.inbox: asyncio.Queue = asyncio.Queue()
        scope = {
            "type": "websocket",
            "path": "/backtests/gone/ws",
            "headers": [],
            "url_route": {"args": (), "kwargs": {"backtest_id": "gone"}},
        }
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(Tracked.as_asgi()(scope, self.inbox.get, self.send))

    async def send(self, message: dict) -> None:
        if message["type"] == "websocket.send":
            self.sends += 1
            if self.failing:
                raise self.error()


def closed_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("websocket closed")]


async def assert_collected() -> None:
    """No consumer object survives its socket."""
    await asyncio.sleep(0)  # let cancelled callbacks and tasks finish
    gc.collect()
    assert len(Tracked.instances) == 0


@pytest.mark.parametrize("server", list(SERVER_ERRORS))
async def test_a_reply_to_a_gone_client_runs_the_clean_up_once(server, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    open_before = metrics.WS_OPEN._value.get()
    harness = Harness(SERVER_ERRORS[server])
    await asyncio.sleep(0.01)
    assert metrics.WS_OPEN._value.get() == open_before + 1
    harness.failing = True
    harness.inbox.put_nowait({"type": "websocket.receive", "text": PLAY})
    # The consumer ends by itself: the failed send was the disconnect.
    await asyncio.wait_for(harness.task, 1)
    assert harness.task.exception() is None
    assert metrics.WS_OPEN._value.get() == open_before
    lines = closed_lines(caplog)
    assert len(lines) == 1 and "code=1006" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    del harness
    await assert_collected()


@pytest.mark.parametrize("server", list(SERVER_ERRORS))
async def test_a_heartbeat_to_a_gone_client_stops_the_heartbeat(server, settings, caplog) -> None:
    settings.WS_HEARTBEAT_INTERVAL = 0.02
    open_before = metrics.WS_OPEN._value.get()
    harness = Harness(SERVER_ERRORS[server])
    await asyncio.sleep(0.01)
    harness.failing = True
    await asyncio.sleep(0.2)  # ten intervals: a live timer would try ten more sends
    assert harness.sends == 1
    # Then the server delivers the disconnect, as both do once the connection is gone.
    harness.inbox.put_nowait({"type": "websocket.disconnect", "code": 1006})
    await asyncio.wait_for(harness.task, 1)
    assert harness.task.exception() is None
    assert metrics.WS_OPEN._value.get() == open_before
    assert len(closed_lines(caplog)) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    del harness
    await assert_collected()


async def test_a_consumer_cancelled_by_the_server_cleans_up_once(caplog) -> None:
    # daphne cancels an application that outlives its connection by 10 s.
    open_before = metrics.WS_OPEN._value.get()
    harness = Harness(SERVER_ERRORS["daphne"])
    await asyncio.sleep(0.01)
    harness.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await harness.task
    assert metrics.WS_OPEN._value.get() == open_before
    assert len(closed_lines(caplog)) == 1
    del harness
    await assert_collected()


async def test_a_normal_close_is_collected_too(caplog) -> None:
    harness = Harness(SERVER_ERRORS["uvicorn"])
    await asyncio.sleep(0.01)
    harness.inbox.put_nowait({"type": "websocket.receive", "text": PAUSE})
    harness.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(harness.task, 1)
    lines = closed_lines(caplog)
    assert len(lines) == 1 and "code=1000" in lines[0].getMessage()
    assert harness.sends == 1
    del harness
    await assert_collected()
