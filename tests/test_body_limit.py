"""HTTP request bodies over the limit get 413 before the application reads them."""

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from project.asgi import application

# Requests through the full ASGI stack end with Django's connection clean-up, which
# pytest-django only allows with database access.
pytestmark = pytest.mark.django_db(transaction=True)


def scope(path: str = "/backtests", headers=()) -> dict:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def response(comm: ApplicationCommunicator) -> tuple[int, dict]:
    start = await comm.receive_output(5)
    body = await comm.receive_output(5)
    await comm.wait(5)
    return start["status"], json.loads(body["body"])


async def test_declared_length_over_the_limit_is_413_without_reading(settings) -> None:
    settings.HTTP_MAX_BODY_BYTES = 1000
    comm = ApplicationCommunicator(application, scope(headers=[(b"content-length", b"5000")]))
    # No body is sent at all: the answer comes from the header alone.
    status, body = await response(comm)
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"] == {"limit": 1000}


async def test_streamed_body_over_the_limit_is_413(settings) -> None:
    settings.HTTP_MAX_BODY_BYTES = 1000
    comm = ApplicationCommunicator(application, scope(path="/healthz"))
    for _ in range(3):
        await comm.send_input({"type": "http.request", "body": b"x" * 600, "more_body": True})
    status, _body = await response(comm)
    assert status == 413


async def test_body_at_the_limit_passes(settings) -> None:
    settings.HTTP_MAX_BODY_BYTES = 1000
    comm = ApplicationCommunicator(application, scope(path="/healthz"))
    await comm.send_input({"type": "http.request", "body": b"x" * 1000})
    start = await comm.receive_output(5)
    assert start["status"] == 405  # reached the view, which takes no POST
    await comm.receive_output(5)
    await comm.wait(5)


def upload_scope(length: int) -> dict:
    request = scope(path="/datasets", headers=[(b"content-length", str(length).encode())])
    request["headers"][1] = (b"content-type", b"text/csv")
    return request


async def test_a_bars_upload_may_pass_the_general_limit(settings) -> None:
    settings.HTTP_MAX_BODY_BYTES = 1000
    settings.DATASET_MAX_BYTES = 5000
    comm = ApplicationCommunicator(application, upload_scope(3000))
    await comm.send_input({"type": "http.request", "body": b"x" * 3000})
    status, body = await response(comm)
    assert status == 422  # read and checked by the view: a query without dataset_id
    assert "dataset_id" in body["error"]["details"]


async def test_a_bars_upload_over_its_own_limit_is_413(settings) -> None:
    settings.HTTP_MAX_BODY_BYTES = 1000
    settings.DATASET_MAX_BYTES = 5000
    status, body = await response(ApplicationCommunicator(application, upload_scope(5001)))
    assert status == 413
    assert body["error"]["details"] == {"limit": 5000}
