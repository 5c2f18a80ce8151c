"""Faults against a real server: fuzzed frames, vanishing clients, restarts."""

import contextlib
import random
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.e2e

PLAY = '{"t":"ctrl","cmd":"play"}'
VALID = [
    PLAY,
    '{"t":"ctrl","cmd":"seek","pos":"2023-03-01T14:30:00Z"}',
    '{"t":"ctrl","cmd":"speed","val":2.5}',
    '{"t":"hb"}',
]
OPEN_SOCKETS = "backtests_ws_connections_open"


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, tmp_path_factory) -> Iterator[LiveServer]:
    kind = request.param
    with live_server(
        kind, tmp_path_factory.mktemp(kind), WS_RATE_LIMIT="0", WS_HEARTBEAT_INTERVAL="0.2"
    ) as live:
        yield live


def open_ws(server: LiveServer, path: str = "/backtests/fuzz/ws") -> ClientConnection:
    return connect(server.ws_url + path, open_timeout=10, max_size=None)


def random_frame(rng: random.Random) -> str | bytes:
    """Random bytes, random text, a mutated valid frame, or an oversized one."""
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if kind == 1:
        return "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(0, 200)))
    if kind == 2:
        return rng.randbytes(rng.randrange(1, 50)).decode("latin-1")
    if kind == 3:
        return "x" * rng.randrange(65_000, 70_000)
    text = list(rng.choice(VALID))
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(text) + 1)
        text[position : position + rng.randrange(0, 3)] = rng.choice(
            ['"', "{", "}", "1", ",", ":", "\\\\", "", "\\x00"]
        )
    return "".join(text)


def test_live_fuzz_leaves_the_server_healthy(server: LiveServer) -> None:
    rng = random.Random(20261128)
    with open_ws(server) as ws:
        for _ in range(1500):
            ws.send(random_frame(rng))
        marker = '{"t":"ctrl","cmd":"play","mark":"end-of-fuzz"}'
        ws.send(marker)
        deadline = time.monotonic() + 30
        while ws.recv(timeout=10) != marker:
            assert time.monotonic() < deadline
    with urllib.request.urlopen(server.http_url + "/healthz", timeout=5) as response:
        assert response.status == 200
    with open_ws(server) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) in (PLAY, '{"t":"hb"}')
    assert server.process.poll() is None
    log = server.log()
    assert "Traceback" not in log
    assert '"level":"ERROR"' not in log and " ERROR " not in log


def test_vanishing_clients_leave_nothing_behind(server: LiveServer) -> None:
    baseline = server.metric(OPEN_SOCKETS)
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(open_ws(server, f"/backtests/vanish-{i}/ws")) for i in range(20)
        ]
        vanish(server, sockets, baseline)
    log = server.log()
    assert log.count("websocket closed backtest_id=vanish-") == 20
    assert "Traceback" not in log


def vanish(server: LiveServer, sockets: list[ClientConnection], baseline: float) -> None:
    """Drop every client's TCP connection without a close frame, half of them mid-frame."""
    server.wait_for_metric(OPEN_SOCKETS, baseline + 20)
    time.sleep(0.3)  # past a heartbeat: some frames are in flight
    for i, ws in enumerate(sockets):
        raw: socket.socket = ws.socket
        if i % 2:
            # Mid-message: a frame header announcing 4096 bytes, 10 of them, then gone.
            raw.sendall(b"\x81\xfe\x10\x00" + b"\x00\x00\x00\x00" + b"0123456789")
        raw.shutdown(socket.SHUT_RDWR)
        raw.close()
    server.wait_for_metric(OPEN_SOCKETS, baseline)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_sigterm_restart_clients_see_the_end_and_reconnect(tmp_path: Path, kind: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with live_server(kind, tmp_path, port=port) as live, contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(open_ws(live, f"/backtests/restart-{i}/ws")) for i in range(5)
        ]
        for ws in clients:
            ws.send(PLAY)
            assert ws.recv(timeout=5) == PLAY
        started = time.monotonic()
        live.process.terminate()
        live.process.wait(timeout=10)
        assert time.monotonic() - started < 10
        codes = []
        for ws in clients:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            codes.append(closed.value.rcvd.code if closed.value.rcvd else 1006)
        print(f"{kind} close codes seen by clients on SIGTERM: {sorted(set(codes))}")
    with live_server(kind, tmp_path, port=port) as restarted, open_ws(restarted) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) == PLAY
