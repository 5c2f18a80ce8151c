"""HTTP around the views: Host validation, unknown paths, CORS, the admin and its static files."""

import pytest
from django.test import AsyncClient, Client

from tests.conftest import asgi_get


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "localhost:8000"])
def test_loopback_hosts_are_allowed(client: Client, host: str) -> None:
    assert client.get("/healthz", HTTP_HOST=host).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "bad host", "[::1"])
def test_foreign_host_gets_400(client: Client, host: str) -> None:
    assert client.get("/healthz", HTTP_HOST=host).status_code == 400


@pytest.mark.parametrize("path", ["/nope", "/healthz/x", "/%ff", "/backtestsx"])
def test_unknown_paths_get_404(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("origin", ["http://localhost:5173", "http://127.0.0.1:5173"])
async def test_cors_allows_the_frontend_origin(async_client: AsyncClient, origin: str) -> None:
    response = await async_client.get("/healthz", headers={"Origin": origin})
    assert response["Access-Control-Allow-Origin"] == origin
    preflight = await async_client.options(
        "/healthz",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == origin


async def test_cors_ignores_other_origins(async_client: AsyncClient) -> None:
    response = await async_client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in response


async def test_cors_origins_are_configurable(async_client: AsyncClient, settings) -> None:
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    response = await async_client.get("/healthz", headers={"Origin": "https://app.example.com"})
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    response = await async_client.get("/healthz", headers={"Origin": "http://localhost:5173"})
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
def test_admin_login_page_renders(client: Client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"/static/admin/css/base.css" in response.content


async def test_admin_static_files_are_served_by_the_asgi_app() -> None:
    response = await asgi_get("/static/admin/css/base.css")
    assert response["status"] == 200
    assert response["headers"][b"Content-Type"].startswith(b"text/css")
    assert b"body" in response["body"]


async def test_static_files_carry_nosniff_and_a_referrer_policy() -> None:
    for path in ("/static/admin/css/base.css", "/static/backtests/play.js"):
        headers = (await asgi_get(path))["headers"]
        assert headers[b"X-Content-Type-Options"] == b"nosniff", path
        assert headers[b"Referrer-Policy"] == b"same-origin", path


async def test_missing_static_file_gets_404() -> None:
    assert (await asgi_get("/static/admin/css/nope.css"))["status"] == 404
    assert (await asgi_get("/static/../project/settings.py"))["status"] == 404
    assert (await asgi_get("/static/admin/../../../../etc/passwd"))["status"] == 404
