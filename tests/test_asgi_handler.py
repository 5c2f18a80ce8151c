"""project/asgi_handler.py: probes get no per-request thread; other requests keep theirs."""

import pytest
from asgiref.sync import ThreadSensitiveContext
from django.core import signals
from django.db import close_old_connections, reset_queries
from django.test import AsyncClient

import project.asgi  # noqa: F401 - builds the handler, as a server would
from project import asgi_handler


def receivers(signal) -> list:
    """The functions connected to a signal."""
    return [entry[1]() for entry in signal.receivers]


def test_request_started_receivers_that_never_have_work_are_disconnected() -> None:
    # Django's sync test client reconnects them after each request; a server has none.
    asgi_handler.ASGIHandler()
    assert close_old_connections not in receivers(signals.request_started)
    assert reset_queries not in receivers(signals.request_started)


def test_request_finished_still_closes_connections() -> None:
    assert close_old_connections in receivers(signals.request_finished)


@pytest.fixture
def contexts(monkeypatch) -> list:
    """Record every per-request thread context the handler enters."""
    entered = []

    class Recording(ThreadSensitiveContext):
        async def __aenter__(self):
            entered.append(self)
            return await super().__aenter__()

    monkeypatch.setattr(asgi_handler, "ThreadSensitiveContext", Recording)
    return entered


async def asgi_get(path: str) -> int:
    """GET through a fresh instance of the project's handler; the status."""
    from asgiref.testing import ApplicationCommunicator

    handler = asgi_handler.ASGIHandler()
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
    }
    comm = ApplicationCommunicator(handler, scope)
    await comm.send_input({"type": "http.request", "body": b""})
    start = await comm.receive_output(5)
    await comm.receive_output(5)
    await comm.wait(5)
    return start["status"]


# The shared thread's request_finished clean-up may meet a connection an earlier test
# opened there; pytest-django refuses that without database access.
@pytest.mark.django_db(transaction=True)
async def test_probe_runs_without_a_thread_of_its_own(contexts: list) -> None:
    assert await asgi_get("/healthz") == 200
    assert contexts == []


@pytest.mark.django_db(transaction=True)
async def test_other_requests_keep_their_own_thread(contexts: list) -> None:
    assert await asgi_get("/backtests") == 200
    assert len(contexts) == 1


def test_threadless_paths_are_only_the_probe_and_metrics(settings) -> None:
    assert {"/healthz", "/metrics"} == settings.THREADLESS_PATHS


async def test_async_client_still_works_for_probes() -> None:
    assert (await AsyncClient().get("/healthz")).status_code == 200
