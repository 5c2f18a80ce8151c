"""Who may do what under AUTH_MODE=required (#18): every route against no credentials, a
bad token, a revoked token, another user's token, one's own token and staff's."""

import json

import pytest
from django.db import connection

from accounts.models import ApiToken
from backtests.models import Run
from tests.access_fixtures import BAD_TOKEN, bearer, make_people
from tests.catalog_factories import CREATE_BODY, make_dataset, make_run
from tests.conftest import Api

pytestmark = pytest.mark.django_db

KINDS = ("none", "bad", "revoked", "other", "own", "staff")


@pytest.fixture(autouse=True)
def required(settings):
    settings.AUTH_MODE = "required"
    settings.METRICS_TOKEN = "scrape-me-0123456789"


@pytest.fixture
def world():
    """alice's QUEUED run on the operator's dataset, and alice's private dataset."""
    people = make_people()
    shared = make_dataset()
    private = make_dataset("ALICE-PRIVATE", owner=people.alice)
    run = make_run(shared, owner=people.alice, status="QUEUED")
    return {"people": people, "run": run, "shared": shared, "private": private}


def headers_for(kind: str, people) -> dict:
    """The request headers of one credential kind (alice owns the objects)."""
    token = {
        "none": None,
        "bad": BAD_TOKEN,
        "revoked": people.revoked_token,
        "other": people.bob_token,
        "own": people.alice_token,
        "staff": people.staff_token,
    }[kind]
    return {} if token is None else bearer(token)


DENIED = {"none": 401, "bad": 401, "revoked": 401}
# route -> status by credential kind (after the three that are always 401)
EXPECTED = {
    "GET /backtests": {"other": 200, "own": 200, "staff": 200},
    "POST /backtests": {"other": 202, "own": 202, "staff": 202},
    "GET /backtests/{run}": {"other": 403, "own": 200, "staff": 200},
    "GET /backtests/{run}/trades": {"other": 403, "own": 409, "staff": 409},
    "GET /backtests/{run}/equity": {"other": 403, "own": 409, "staff": 409},
    "POST /backtests/{run}/cancel": {"other": 403, "own": 200, "staff": 200},
    "GET /datasets": {"other": 200, "own": 200, "staff": 200},
    "GET /datasets/{private}": {"other": 403, "own": 200, "staff": 200},
    "GET /datasets/{shared}": {"other": 200, "own": 200, "staff": 200},
    "GET /strategies": {"other": 200, "own": 200, "staff": 200},
    "GET /metrics": {"other": 403, "own": 403, "staff": 200},
}


def call(client, route: str, world, headers: dict):
    """The response to one route's request, checked against openapi.yaml when JSON."""
    method, template = route.split(" ")
    path = template.format(
        run=world["run"].run_id, private=world["private"].dataset_id, shared="AAPL-2023-1m"
    )
    if method == "GET":
        response = client.get(path, headers=headers)
    else:
        body = json.dumps(CREATE_BODY) if path == "/backtests" else ""
        response = client.generic(
            method, path, body, CONTENT_TYPE="application/json", headers=headers
        )
    if response["Content-Type"] == "application/json":
        Api.checked(method, path, response)
    return response


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_every_route_by_credential(client, world, route, kind) -> None:
    response = call(client, route, world, headers_for(kind, world["people"]))
    expected = DENIED.get(kind) or EXPECTED[route][kind]
    assert response.status_code == expected, response.content[:300]
    if expected == 401:
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
        challenge = response["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="backtests"')
        assert ('error="invalid_token"' in challenge) == (kind != "none")
    if expected == 403:
        assert response.json()["error"]["code"] == "FORBIDDEN"


STREAM = {"other": 403, "own": 400, "staff": 400}  # own: a QUEUED run is 400 RANGE


# The stream looks the run up with database_sync_to_async, which on PostgreSQL needs a
# committed database, not the test's open transaction.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_the_stream_by_credential(client, world, kind) -> None:
    response = call(
        client, "GET /backtests/{run}/stream", world, headers_for(kind, world["people"])
    )
    assert response.status_code == (DENIED.get(kind) or STREAM[kind]), response.content[:300]


@pytest.mark.parametrize("kind", KINDS)
def test_the_probes_stay_open(client, world, kind) -> None:
    headers = headers_for(kind, world["people"]) if kind in ("none", "own") else {}
    assert client.get("/healthz", headers=headers).status_code == 200
    assert client.get("/readyz", headers=headers).status_code == 200


def test_metrics_token_scrapes_metrics(client, world) -> None:
    response = client.get("/metrics", headers=bearer("scrape-me-0123456789"))
    assert response.status_code == 200
    assert b"backtests_ws_connections_open" in response.content
    assert client.get("/metrics", headers=bearer("scrape-me-wrong")).status_code == 401


def test_a_list_shows_ones_own_runs_and_staff_every_run(client, world) -> None:
    people = world["people"]
    operators = make_run(world["shared"])  # no owner: the demo's, the command line's
    bobs = make_run(world["shared"], owner=people.bob)
    ids = {
        kind: {item["run_id"] for item in client.get("/backtests", headers=h).json()["items"]}
        for kind, h in (
            ("alice", bearer(people.alice_token)),
            ("bob", bearer(people.bob_token)),
            ("staff", bearer(people.staff_token)),
        )
    }
    assert ids["alice"] == {world["run"].run_id}
    assert ids["bob"] == {bobs.run_id}
    assert ids["staff"] == {world["run"].run_id, operators.run_id, bobs.run_id}
    refused = client.get(f"/backtests/{operators.run_id}", headers=bearer(people.alice_token))
    assert refused.status_code == 403


def test_datasets_list_the_users_the_operators_and_public_ones(client, world) -> None:
    people = world["people"]
    make_dataset("BOB-PUBLIC", owner=people.bob, public=True)
    make_dataset("BOB-PRIVATE", owner=people.bob)

    def listed(token):
        items = client.get("/datasets", headers=bearer(token)).json()["items"]
        return {item["dataset_id"] for item in items}

    assert listed(people.alice_token) == {"AAPL-2023-1m", "ALICE-PRIVATE", "BOB-PUBLIC"}
    assert listed(people.bob_token) == {"AAPL-2023-1m", "BOB-PRIVATE", "BOB-PUBLIC"}
    assert len(listed(people.staff_token)) == 4


def test_a_run_on_another_users_private_dataset_is_403(client, world) -> None:
    body = {**CREATE_BODY, "dataset_id": "ALICE-PRIVATE"}
    refused = client.post(
        "/backtests",
        body,
        content_type="application/json",
        headers=bearer(world["people"].bob_token),
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    mine = client.post(
        "/backtests",
        body,
        content_type="application/json",
        headers=bearer(world["people"].alice_token),
    )
    assert mine.status_code == 202


def test_runs_record_their_creator_and_two_users_get_a_run_each(client, world) -> None:
    people = world["people"]
    ids = []
    for token in (people.alice_token, people.bob_token, people.alice_token):
        response = client.post(
            "/backtests",
            CREATE_BODY,
            content_type="application/json",
            headers={**bearer(token), "Idempotency-Key": "same-key"},
        )
        ids.append(response.json()["run_id"])
    assert ids[0] == ids[2] and ids[0] != ids[1]  # alice's repeat is alice's run
    assert Run.objects.get(pk=ids[0]).owner == people.alice
    assert Run.objects.get(pk=ids[1]).owner == people.bob
    detail = client.get(f"/backtests/{ids[1]}", headers=bearer(people.bob_token)).json()
    assert detail["owner"] == "bob"


def test_staff_cancel_any_run_and_no_one_else_the_operators(client, world) -> None:
    people = world["people"]
    operators = make_run(world["shared"], status="QUEUED")

    def cancel(token):
        return client.generic(
            "POST",
            f"/backtests/{operators.run_id}/cancel",
            CONTENT_TYPE="application/json",
            headers=bearer(token),
        )

    assert cancel(people.alice_token).status_code == 403
    assert cancel(people.staff_token).status_code == 200
    operators.refresh_from_db()
    assert operators.status == "CANCELLED"


def test_tokens_are_not_stored_in_clear(world) -> None:
    people = world["people"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    for token in (people.alice_token, people.bob_token, people.staff_token, people.revoked_token):
        assert token not in stored
        assert token[:10] in stored  # the prefix, which tells people tokens apart


def test_a_token_records_when_it_was_last_used(client, world) -> None:
    people = world["people"]
    row = ApiToken.objects.get(user=people.bob, revoked_at__isnull=True)
    assert row.last_used_at is None
    client.get("/strategies", headers=bearer(people.bob_token))
    row.refresh_from_db()
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    "header", ["Basic YWxpY2U6cHc=", "Bearer", "Bearer ", "bt_abc", "Bearer not-a-token"]
)
def test_a_malformed_authorization_header_is_401(client, world, header) -> None:
    response = client.get("/backtests", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_auth_mode_off_lets_anyone_do_anything(client, world, settings) -> None:
    settings.AUTH_MODE = "off"
    run = world["run"]
    assert client.get(f"/backtests/{run.run_id}").status_code == 200
    assert client.get("/metrics").status_code == 200
    cancelled = client.generic(
        "POST", f"/backtests/{run.run_id}/cancel", CONTENT_TYPE="application/json"
    )
    assert cancelled.status_code == 200
