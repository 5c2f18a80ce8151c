"""GET /healthz."""

import pytest
from django.test import AsyncClient


async def test_healthz_get_returns_ok_json(async_client: AsyncClient) -> None:
    response = await async_client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == b'{"status":"ok"}'


async def test_healthz_head_returns_ok_without_body(async_client: AsyncClient) -> None:
    response = await async_client.head("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == b""


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
async def test_healthz_other_methods_get_405(async_client: AsyncClient, method: str) -> None:
    response = await getattr(async_client, method)("/healthz")
    assert response.status_code == 405
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


async def test_healthz_needs_no_database(async_client: AsyncClient) -> None:
    # No django_db mark: pytest-django fails any test that touches the database.
    assert (await async_client.get("/healthz")).status_code == 200
