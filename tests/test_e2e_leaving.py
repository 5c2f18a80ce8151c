"""Every way a client can leave a real server, with replies in flight: clean-up runs once.

Each way of leaving is run 100 times against daphne and uvicorn with real `websockets`
clients; afterwards the open-socket gauge is at its baseline, every socket logged exactly
one `websocket closed` line, nothing was logged at ERROR or with a traceback, and no
heartbeat is sent once the clients are gone. A long run of the same cycles shows that
the server's memory stays flat.
"""

import asyncio
import os
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.e2e

HEARTBEAT = 0.1
PLAY = '{"t":"ctrl","cmd":"play"}'
ITERATIONS = 100
CONCURRENCY = 20
# 10,000 cycles for the memory check, after 9,000 that grow a fresh process to its
# working set (measured: daphne's RSS, even under a bare ASGI app, climbs in steps for
# a few thousand cycles, then stays flat).
RSS_CYCLES = 10_000
WARM_UP_CYCLES = 9_000


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, tmp_path_factory) -> Iterator[LiveServer]:
    kind = request.param
    with live_server(
        kind,
        tmp_path_factory.mktemp(f"leave-{kind}"),
        WS_RATE_LIMIT="0",
        WS_HEARTBEAT_INTERVAL=str(HEARTBEAT),
    ) as live:
        yield live


def wait_for_gauge(server: LiveServer, expected: float) -> None:
    """Wait until the open-socket gauge reads `expected`."""
    server.wait_for_metric("backtests_ws_connections_open", expected, timeout=15)


def reset(ws: ClientConnection) -> None:
    """Drop the TCP connection with a RST: no close frame, no FIN."""
    raw: socket.socket = ws.transport.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame (masked, as clients must) with any first byte, even an illegal one."""
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([first_byte, 0x80 | len(payload)]) + mask + body


async def wait_closed(ws: ClientConnection) -> None:
    """Read until the server ends the connection."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed:
        pass


async def close_frame(ws: ClientConnection) -> None:
    """A valid message, then a close frame at once, while the echo is being written."""
    await ws.send(PLAY)
    await ws.close()


async def tcp_reset(ws: ClientConnection) -> None:
    """A valid message, then a TCP reset."""
    await ws.send(PLAY)
    reset(ws)


async def protocol_violation(ws: ClientConnection) -> None:
    """A valid message, then a frame with the reserved bits set (the server fails it)."""
    await ws.send(PLAY)
    ws.transport.write(masked_frame(0xF1, b"x"))
    await wait_closed(ws)


async def invalid_utf8(ws: ClientConnection) -> None:
    """A valid message, then a text frame that is not UTF-8 (the server closes with 1007)."""
    await ws.send(PLAY)
    ws.transport.write(masked_frame(0x81, b"\xff\xfe"))
    await wait_closed(ws)


async def oversize_frame(ws: ClientConnection) -> None:
    """A 256 KiB message (over the protocol's limit: an err reply), then a close at once."""
    await ws.send("x" * 256 * 1024)
    await ws.close()


async def close_mid_send(ws: ClientConnection) -> None:
    """Fifty messages, then a close: the server is still writing replies when it arrives."""
    for _ in range(50):
        await ws.send(PLAY)
    ws.transport.write(masked_frame(0x88, struct.pack("!H", 1000)))
    reset(ws)


async def during_heartbeat(ws: ClientConnection) -> None:
    """Wait for a heartbeat, then leave at a random moment of the next interval."""
    await asyncio.wait_for(ws.recv(), 5)
    await asyncio.sleep(random.uniform(0.8, 1.0) * HEARTBEAT)
    ws.transport.write(masked_frame(0x88, struct.pack("!H", 1001)))
    reset(ws)


WAYS: dict[str, Callable[[ClientConnection], Awaitable[None]]] = {
    "close": close_frame,
    "reset": tcp_reset,
    "violation": protocol_violation,
    "invalid-utf8": invalid_utf8,
    "oversize": oversize_frame,
    "mid-send": close_mid_send,
    "heartbeat": during_heartbeat,
}


async def leave_many(server: LiveServer, way: str, count: int) -> None:
    """Open `count` sockets (CONCURRENCY at a time) and leave each of them `way`."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(n: int) -> None:
        async with gate:
            url = f"{server.ws_url}/backtests/leave-{way}-{n}/ws"
            ws = await connect(url, open_timeout=10, max_size=None, compression=None)
            try:
                await WAYS[way](ws)
            except ConnectionClosed:
                pass  # the server may close first (the violation case): that is leaving too
            finally:
                ws.transport.abort()

    await asyncio.gather(*(one(n) for n in range(count)))


@pytest.mark.parametrize("way", list(WAYS))
def test_every_way_of_leaving_runs_the_clean_up_once(server: LiveServer, way: str) -> None:
    baseline = server.metric("backtests_ws_connections_open")
    offset = len(server.log())
    asyncio.run(leave_many(server, way, ITERATIONS))
    wait_for_gauge(server, baseline)
    # One heartbeat interval after the last socket went: no heartbeat for a gone socket.
    time.sleep(2 * HEARTBEAT)
    sent = server.metric("backtests_ws_messages_out_total")
    time.sleep(3 * HEARTBEAT)
    assert server.metric("backtests_ws_messages_out_total") == sent
    log = server.log()[offset:]
    assert log.count(f"websocket closed backtest_id=leave-{way}-") == ITERATIONS
    assert "Traceback" not in log
    assert '"level":"ERROR"' not in log
    assert "heartbeat not sent" not in log


def test_memory_stays_flat_over_many_leaving_cycles(server: LiveServer) -> None:
    pid = server.process.pid
    baseline = server.metric("backtests_ws_connections_open")
    for way in WAYS:
        asyncio.run(leave_many(server, way, WARM_UP_CYCLES // len(WAYS)))
    wait_for_gauge(server, baseline)
    before = rss_bytes(pid)
    per_way = -(-RSS_CYCLES // len(WAYS))
    for way in WAYS:
        asyncio.run(leave_many(server, way, per_way))
    wait_for_gauge(server, baseline)
    time.sleep(3 * HEARTBEAT)
    after = rss_bytes(pid)
    print(f"RSS over {per_way * len(WAYS)} cycles: {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    assert after <= before * 1.05
    assert server.metric("backtests_ws_connections_open") == baseline


def rss_bytes(pid: int) -> int:
    """A process's resident memory now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")
