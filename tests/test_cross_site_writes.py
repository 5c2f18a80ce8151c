"""No simple cross-site request can write (#18): an unsafe API request must be
`application/json` (which a form or a `no-cors` fetch cannot send), duplicate JSON keys
are refused, and CORS lets the frontend send the headers the API reads."""

import json

import pytest

from backtests.models import Run
from tests.catalog_factories import CREATE_BODY, make_dataset, make_run

pytestmark = pytest.mark.django_db

VITE = "http://localhost:5173"


@pytest.fixture
def aapl():
    return make_dataset()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_create_that_is_not_json_is_415_and_makes_nothing(client, aapl, content_type) -> None:
    extra = {"CONTENT_TYPE": content_type} if content_type else {}
    response = client.generic("POST", "/backtests", json.dumps(CREATE_BODY), **extra)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert error["details"] == {"Content-Type": "must be application/json"}
    assert not Run.objects.exists()


def test_json_with_a_charset_is_json(client, aapl) -> None:
    body = json.dumps(CREATE_BODY)
    response = client.generic(
        "POST", "/backtests", body, CONTENT_TYPE="application/json; charset=utf-8"
    )
    assert response.status_code == 202


def test_a_cancel_needs_json_too_even_without_a_body(client, aapl) -> None:
    run = make_run(aapl, status="QUEUED")
    # A no-cors fetch or a form from another site sends no body and no JSON type.
    refused = client.generic("POST", f"/backtests/{run.run_id}/cancel")
    assert refused.status_code == 415
    run.refresh_from_db()
    assert run.status == "QUEUED"
    done = client.generic(
        "POST", f"/backtests/{run.run_id}/cancel", CONTENT_TYPE="application/json"
    )
    assert done.status_code == 200 and done.json()["status"] == "CANCELLED"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ('{"seed": 1, "seed": 2}', "seed"),
        ('{"params": {"fast": 5, "fast": 50}, "seed": 1}', "fast"),
    ],
)
def test_duplicate_json_keys_are_refused(api, aapl, raw: str, key: str) -> None:
    response = api.post("/backtests", raw, raw=True)
    assert response.status_code == 422
    assert response.data["error"]["details"] == {"body": f"the key {key!r} is given twice"}
    assert not Run.objects.exists()


def test_cors_lets_the_frontend_send_the_apis_headers(client) -> None:
    wanted = "authorization, content-type, idempotency-key, x-idempotency-key, x-request-id"
    response = client.options(
        "/backtests",
        headers={
            "Origin": VITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": wanted,
        },
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == VITE
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert set(wanted.split(", ")) <= allowed
