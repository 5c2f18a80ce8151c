"""Sockets under AUTH_MODE=required (#18): refused at the handshake (403) without a user,
with a bad or revoked token, or for another user's run; a token as a subprotocol entry or
the session cookie opens one; authentication costs at most one query."""

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends import utils
from django.test import Client

from accounts import socket_auth, tokens
from tests.access_fixtures import BAD_TOKEN, make_people
from tests.catalog_factories import make_dataset, make_run
from tests.conftest import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def required(settings):
    settings.AUTH_MODE = "required"
    yield
    connections.close_all()


@pytest.fixture
def world():
    people = make_people()
    run = make_run(make_dataset(), owner=people.alice, status="QUEUED")
    return people, run


def session_cookie(user) -> bytes:
    """The Cookie header of a browser logged in as `user`."""
    browser = Client()
    browser.force_login(user)
    return f"sessionid={browser.cookies['sessionid'].value}".encode()


async def opens(path: str, subprotocols=None, headers=()) -> tuple[bool, object]:
    """Whether the handshake is accepted, and the subprotocol it was accepted with."""
    ws = communicator(path, subprotocols=subprotocols, headers=headers)
    connected, subprotocol = await ws.connect()
    await ws.disconnect()
    return connected, subprotocol


@pytest.mark.parametrize(
    ("who", "accepted"),
    [
        ("none", False),
        ("bad", False),
        ("revoked", False),
        ("other", False),
        ("own", True),
        ("staff", True),
    ],
)
async def test_a_socket_by_token_kind(world, who, accepted) -> None:
    people, run = world
    token = {
        "bad": BAD_TOKEN,
        "revoked": people.revoked_token,
        "other": people.bob_token,
        "own": people.alice_token,
        "staff": people.staff_token,
    }.get(who)
    offered = ["backtests.v1"] + ([f"bearer.{token}"] if token else [])
    connected, subprotocol = await opens(f"/backtests/{run.run_id}/ws", offered)
    assert connected is accepted
    if accepted:
        assert subprotocol == "backtests.v1"  # never the token entry


async def test_a_session_cookie_opens_ones_own_runs_socket(world) -> None:
    people, run = world
    alice = await sync_to_async(session_cookie)(people.alice)
    bob = await sync_to_async(session_cookie)(people.bob)
    path = f"/backtests/{run.run_id}/ws"
    assert (await opens(path, headers=[(b"cookie", alice)]))[0] is True
    assert (await opens(path, headers=[(b"cookie", bob)]))[0] is False
    assert (await opens(path, headers=[(b"cookie", b"sessionid=forged")]))[0] is False


async def test_auth_mode_off_opens_any_socket(world, settings) -> None:
    settings.AUTH_MODE = "off"
    _, run = world
    assert (await opens(f"/backtests/{run.run_id}/ws"))[0] is True


@pytest.fixture
def queries(monkeypatch) -> list[str]:
    """Every SQL statement executed, in any thread."""
    seen: list[str] = []
    execute = utils.CursorWrapper._execute

    def counting(self, sql, *args, **kwargs):
        seen.append(sql)
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(utils.CursorWrapper, "_execute", counting)
    return seen


async def test_a_sockets_authentication_costs_one_query(world, queries) -> None:
    people, _ = world
    by_token = {"subprotocols": ["backtests.v1", f"bearer.{people.alice_token}"]}
    await socket_auth.user_of(by_token)  # the first use of the minute writes last_used_at
    tokens.forget([tokens.digest(people.alice_token)])  # no longer trusted: looked up
    queries.clear()
    assert (await socket_auth.user_of(by_token)).username == "alice"
    assert len(queries) == 1, queries
    queries.clear()
    assert (await socket_auth.user_of(by_token)).username == "alice"
    assert queries == []  # trusted for a few seconds: no query at all
    cookie = await sync_to_async(session_cookie)(people.bob)
    queries.clear()
    assert (await socket_auth.user_of({"headers": [(b"cookie", cookie)]})).username == "bob"
    assert len(queries) == 1, queries
