"""project/middleware.py under ASGI: API paths skip the admin's middleware; headers apply
everywhere. settings.MIDDLEWARE names Django's classes; project/asgi_handler.py loads their
adapted forms, so the adapters are tested through project.asgi.application (AsyncClient's
handler loads Django's classes as they are)."""

import threading

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions import middleware as sessions
from django.db import connections
from django.middleware import security
from django.test import AsyncClient
from django.utils.module_loading import import_string

from project.middleware import is_api_path
from tests.conftest import asgi_get


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/backtests", True),
        ("/backtests/01ABC", True),
        ("/healthz", True),
        ("/backtestsx", False),
        ("/admin/", False),
        ("/admin/backtests/run/", False),
        ("/healthzz", False),
    ],
)
def test_is_api_path(path: str, api: bool) -> None:
    assert is_api_path(path) is api


@pytest.fixture
async def site_db(transactional_db):
    """A database the async ORM's worker thread can see; its connection closed after."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.parametrize("path", ["/healthz", "/backtests"])
async def test_api_paths_get_security_headers_but_no_session_or_csrf(site_db, path) -> None:
    response = await AsyncClient().get(path)
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies


async def test_admin_still_gets_session_csrf_and_auth(site_db) -> None:
    response = await AsyncClient().get("/admin/login/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    assert response["X-Frame-Options"] == "DENY"
    refused = await AsyncClient(enforce_csrf_checks=True).post(
        "/admin/login/", {"username": "a", "password": "b"}
    )
    assert refused.status_code == 403


async def test_admin_login_works_end_to_end(site_db, django_user_model) -> None:
    await django_user_model.objects.acreate_superuser("ops", "ops@example.com", "pw-123456")
    client = AsyncClient()
    response = await client.post(
        "/admin/login/?next=/admin/", {"username": "ops", "password": "pw-123456"}
    )
    assert response.status_code == 302
    assert "sessionid" in response.cookies
    assert (await client.get("/admin/")).status_code == 200


async def test_common_middleware_still_appends_slashes() -> None:
    response = await AsyncClient().get("/admin")
    assert response.status_code == 301
    assert response["Location"] == "/admin/"


async def test_api_paths_skip_the_site_middleware(site_db, monkeypatch) -> None:
    seen = []
    original = sessions.SessionMiddleware.process_request

    def spy(self, request):
        seen.append(request.path)
        return original(self, request)

    monkeypatch.setattr(sessions.SessionMiddleware, "process_request", spy)
    await asgi_get("/healthz")
    await asgi_get("/backtests")
    await asgi_get("/admin/login/")
    assert seen == ["/admin/login/"]


async def test_header_middleware_runs_on_the_event_loop(site_db, monkeypatch) -> None:
    threads = []
    original = security.SecurityMiddleware.process_response

    def spy(self, request, response):
        threads.append(threading.current_thread())
        return original(self, request, response)

    monkeypatch.setattr(security.SecurityMiddleware, "process_response", spy)
    await asgi_get("/healthz")
    assert threads == [threading.current_thread()]


def test_middleware_names_djangos_classes_and_the_asgi_handler_adapts_them() -> None:
    from django.conf import settings

    from project import middleware

    for path, adapted in middleware.ADAPTED.items():
        assert path in settings.MIDDLEWARE  # what check --deploy reads
        assert issubclass(adapted, import_string(path)) and adapted is not import_string(path)
    # That the ASGI handler loads the adapted forms, the two tests above show: the
    # session middleware skips API paths and the security one runs on the loop.
