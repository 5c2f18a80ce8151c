"""Shared fixtures: WebSocket communicators that go through the real ASGI application."""

from collections.abc import AsyncIterator

import pytest
from channels.testing import WebsocketCommunicator

from project.asgi import application

FRONTEND_ORIGIN = b"http://localhost:5173"


def communicator(
    path: str = "/backtests/run-1/ws", origin: bytes | None = FRONTEND_ORIGIN, headers=()
) -> WebsocketCommunicator:
    """A communicator for `path` through project.asgi.application (guards and router)."""
    all_headers = [(b"host", b"localhost:8000"), *headers]
    if origin is not None:
        all_headers.append((b"origin", origin))
    return WebsocketCommunicator(application, path, headers=all_headers)


@pytest.fixture
async def ws() -> AsyncIterator[WebsocketCommunicator]:
    """An open socket to /backtests/run-1/ws from the frontend's origin."""
    comm = communicator()
    connected, _ = await comm.connect()
    assert connected
    yield comm
    await comm.disconnect()
