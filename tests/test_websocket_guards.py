"""WebSocket handshakes: which paths route and which origins may connect."""

import logging

import pytest

from project.websocket_guards import origin_allowed
from tests.conftest import communicator


async def assert_refused(path: str, origin: bytes | None = b"http://localhost:5173", headers=()):
    """Assert the handshake is refused (403 under a server) before any consumer runs."""
    ws = communicator(path, origin=origin, headers=headers)
    connected, _ = await ws.connect()
    assert not connected
    await ws.disconnect()


async def assert_accepted(path: str, origin: bytes | None = b"http://localhost:5173", headers=()):
    """Assert the handshake opens and the socket echoes a ctrl message."""
    ws = communicator(path, origin=origin, headers=headers)
    connected, _ = await ws.connect()
    assert connected
    await ws.send_to(text_data='{"t":"ctrl","cmd":"play"}')
    assert await ws.receive_from() == '{"t":"ctrl","cmd":"play"}'
    await ws.disconnect()


@pytest.mark.parametrize(
    "backtest_id",
    [
        "1",
        "42",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "3f2b8c1e-9d4a-4e1b-8f6a-2c7d9e0b1a5c",
        "sma_crossover-aapl",
        "a" * 64,
    ],
)
async def test_well_formed_ids_route(backtest_id: str) -> None:
    await assert_accepted(f"/backtests/{backtest_id}/ws")


@pytest.mark.parametrize(
    "path",
    [
        "/backtests/" + "a" * 65 + "/ws",
        "/backtests//ws",
        "/backtests/-abc/ws",
        "/backtests/_abc/ws",
        "/backtests/a.b/ws",
        "/backtests/a b/ws",
        "/backtests/ünï/ws",
        "/backtests/a/b/ws",
        "/backtests/abc/ws/",
        "/backtests/abc",
        "/nope/ws",
        "/",
        "",
        "/healthz",
    ],
)
async def test_unroutable_paths_are_refused_without_error_logs(path: str, caplog) -> None:
    caplog.set_level(logging.INFO)
    await assert_refused(path)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("no route for path" in r.getMessage() for r in caplog.records)


async def test_client_sent_root_path_does_not_break_routing() -> None:
    # daphne copies a Daphne-Root-Path header into scope["root_path"].
    ws = communicator("/backtests/abc/ws")
    ws.scope["root_path"] = "/elsewhere"
    connected, _ = await ws.connect()
    assert connected
    await ws.disconnect()


async def test_root_path_does_not_make_a_bad_path_route() -> None:
    ws = communicator("/prefix/backtests/abc/ws")
    ws.scope["root_path"] = "/prefix"
    connected, _ = await ws.connect()
    assert not connected
    await ws.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        b"http://localhost:5173",
        b"http://127.0.0.1:5173",
        b"http://localhost",
        b"https://localhost:8443",
        b"http://[::1]:5173",
        b"http://LOCALHOST:5173",
    ],
)
async def test_allowed_origins_connect(origin: bytes) -> None:
    await assert_accepted("/backtests/abc/ws", origin=origin)


async def test_missing_origin_connects() -> None:
    await assert_accepted("/backtests/abc/ws", origin=None)


@pytest.mark.parametrize(
    "origin",
    [
        b"http://evil.example",
        b"http://localhost.evil.example",
        b"http://evil.example:5173",
        b"null",
        b"",
        b"localhost",
        b"ftp://localhost",
        b"http://[::1",
        b"http://localhost:99999",
        b"http://localhost:port",
        b"http://user@localhost:5173",
        b"http://localhost:5173/path",
        b"http://localhost:5173?q=1",
        b"http://\xff\xfe",
        b"http://",
    ],
)
async def test_foreign_or_malformed_origins_are_refused(origin: bytes, caplog) -> None:
    caplog.set_level(logging.INFO)
    await assert_refused("/backtests/abc/ws", origin=origin)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_repeated_origin_header_is_refused() -> None:
    await assert_refused("/backtests/abc/ws", headers=[(b"origin", b"http://evil.example")])


def test_origin_follows_allowed_hosts_setting(settings) -> None:
    assert not origin_allowed(b"https://app.example.com")
    settings.ALLOWED_HOSTS = [".example.com"]
    assert origin_allowed(b"https://app.example.com")
    assert not origin_allowed(b"http://localhost:8000")


def test_configured_cors_origin_may_connect(settings) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://frontend.example.net"]
    assert origin_allowed(b"https://frontend.example.net")
    assert not origin_allowed(b"https://other.example.net")
