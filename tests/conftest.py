"""Shared fixtures: WebSocket communicators through the real ASGI app; the checked REST client."""

import json
from collections.abc import AsyncIterator

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator

from project.asgi import application
from tests.openapi import assert_response_matches

FRONTEND_ORIGIN = b"http://localhost:5173"


async def asgi_get(path: str) -> dict:
    """GET `path` through project.asgi.application, as daphne would: status, headers, body."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b""})
    start = await comm.receive_output(5)
    body = b""
    while True:
        chunk = await comm.receive_output(5)
        body += chunk.get("body", b"")
        if not chunk.get("more_body"):
            break
    await comm.wait(5)
    return {"status": start["status"], "headers": dict(start["headers"]), "body": body}


def communicator(
    path: str = "/backtests/run-1/ws",
    origin: bytes | None = FRONTEND_ORIGIN,
    headers=(),
    subprotocols: list[str] | None = None,
) -> WebsocketCommunicator:
    """A communicator for `path` through project.asgi.application (guards and router)."""
    all_headers = [(b"host", b"localhost:8000"), *headers]
    if origin is not None:
        all_headers.append((b"origin", origin))
    return WebsocketCommunicator(application, path, headers=all_headers, subprotocols=subprotocols)


@pytest.fixture(autouse=True)
def untrusted_tokens():
    """Each test looks its tokens up afresh (accounts/tokens.py trusts one for seconds)."""
    from accounts import tokens

    tokens._trusted.clear()
    yield
    tokens._trusted.clear()


@pytest.fixture(autouse=True)
def fresh_quota_counts():
    """Each test's POSTs counted from zero (the quota counts live in Django's cache), so
    that a module's requests never spend the next one's POSTS_PER_MINUTE."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def data_dirs(settings, tmp_path):
    """Bars and artifacts of each test in its own folders, never in the project's var/."""
    settings.DATA_DIR = tmp_path / "data"
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture
async def ws() -> AsyncIterator[WebsocketCommunicator]:
    """An open socket to /backtests/run-1/ws from the frontend's origin."""
    comm = communicator()
    connected, _ = await comm.connect()
    assert connected
    yield comm
    await comm.disconnect()


class Api:
    """The sync test client for the REST API, checking every answer against openapi.yaml."""

    def __init__(self, client) -> None:
        self.client = client

    def get(self, path: str, query: dict | None = None):
        """GET `path` and return the response, its JSON checked against the document."""
        return self.checked("GET", path, self.client.get(path, query or {}))

    def post(self, path: str, body, headers: dict | None = None, raw: bool = False):
        """POST a JSON body (or raw bytes/str when `raw`) and check the answer."""
        data = body if raw else json.dumps(body)
        # CONTENT_TYPE as extra too: Django's client sets none for an empty body, and an
        # unsafe request without application/json is 415.
        response = self.client.post(
            path,
            data,
            content_type="application/json",
            headers=headers or {},
            CONTENT_TYPE="application/json",
        )
        return self.checked("POST", path, response)

    def call(self, method: str, path: str):
        """Any other method, checked likewise."""
        return self.checked(method, path, self.client.generic(method, path))

    @staticmethod
    def checked(method: str, path: str, response):
        assert response["Content-Type"] == "application/json", response.content[:200]
        response.data = json.loads(response.content)
        assert_response_matches(method, path.split("?")[0], response.status_code, response.data)
        return response


@pytest.fixture
def api(client, db) -> Api:
    """The REST API over a test database, answers checked against docs/api/openapi.yaml."""
    return Api(client)
