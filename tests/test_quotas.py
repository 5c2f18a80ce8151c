"""Quotas per client (#18): POSTs a minute, active runs, open streams and sockets; each
answers 429 RATE_LIMITED with Retry-After (a socket: 403 at the handshake) and recovers."""

import pytest
from django.core.cache import cache

from accounts import quotas
from backtests.models import Run
from tests.access_fixtures import bearer, make_people
from tests.catalog_factories import CREATE_BODY, make_dataset
from tests.conftest import communicator

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def aapl():
    return make_dataset()


def post(api, seed: int, headers: dict | None = None):
    return api.post("/backtests", {**CREATE_BODY, "seed": seed}, headers=headers)


def test_posts_past_the_minutes_limit_are_429_then_recover(api, aapl, settings, monkeypatch):
    settings.POSTS_PER_MINUTE = 3
    clock = [60 * 16_667 + 20.0]  # 20 s into a window
    monkeypatch.setattr(quotas.time, "time", lambda: clock[0])
    assert [post(api, seed).status_code for seed in range(3)] == [202, 202, 202]
    refused = post(api, 99)
    assert refused.status_code == 429
    assert refused.data["error"]["code"] == "RATE_LIMITED"
    assert refused.data["error"]["details"]["limit"] == 3
    assert 1 <= int(refused["Retry-After"]) <= 41
    assert not Run.objects.filter(seed=99).exists()
    clock[0] += 41  # the next window
    assert post(api, 99).status_code == 202


def test_the_post_limit_counts_each_user_apart(api, aapl, settings):
    settings.AUTH_MODE = "required"
    settings.POSTS_PER_MINUTE = 1
    people = make_people()
    assert post(api, 1, bearer(people.alice_token)).status_code == 202
    assert post(api, 2, bearer(people.alice_token)).status_code == 429
    assert post(api, 3, bearer(people.bob_token)).status_code == 202


def test_active_runs_past_the_limit_are_429_until_one_finishes(api, aapl, settings):
    settings.RUNS_MAX_ACTIVE = 2
    first, _ = (post(api, seed).data["run_id"] for seed in range(2))
    refused = post(api, 3)
    assert refused.status_code == 429
    assert refused.data["error"]["details"] == {"limit": 2, "retry_after": 10}
    assert refused["Retry-After"] == "10"
    assert post(api, 0).status_code == 200  # a repeat is no new run: EXISTS, as ever
    api.client.generic("POST", f"/backtests/{first}/cancel", CONTENT_TYPE="application/json")
    assert post(api, 3).status_code == 202


def test_active_runs_count_by_user_and_by_address(api, aapl, settings):
    settings.AUTH_MODE = "required"
    settings.RUNS_MAX_ACTIVE = 1
    people = make_people()
    assert post(api, 1, bearer(people.alice_token)).status_code == 202
    assert post(api, 2, bearer(people.alice_token)).status_code == 429
    assert post(api, 3, bearer(people.bob_token)).status_code == 202
    settings.AUTH_MODE = "off"  # anonymous clients count by address
    assert post(api, 4).status_code == 202
    assert post(api, 5).status_code == 429
    other = api.client.post(
        "/backtests",
        {**CREATE_BODY, "seed": 6},
        content_type="application/json",
        REMOTE_ADDR="10.1.2.3",
    )
    assert other.status_code == 202


def test_open_streams_are_counted_per_client_and_in_all():
    counter = quotas.OpenCounter("streams")
    a1 = counter.take("user:1", per_client=2, in_all=3)
    counter.take("user:1", per_client=2, in_all=3)
    with pytest.raises(quotas.OverQuota, match="you have 2 streams open"):
        counter.take("user:1", per_client=2, in_all=3)
    counter.take("user:2", per_client=2, in_all=3)
    with pytest.raises(quotas.OverQuota, match="3 streams are open on this server"):
        counter.take("user:3", per_client=2, in_all=3)
    a1.release()
    a1.release()  # once only, whatever way the stream ends
    assert counter.total == 2 and counter.by_client["user:1"] == 1
    counter.take("user:3", per_client=2, in_all=3)


@pytest.mark.django_db(transaction=True)
async def test_sockets_past_the_clients_limit_are_refused_then_recover(settings):
    settings.WS_MAX_PER_CLIENT = 2
    first, second = communicator(), communicator()
    assert (await first.connect())[0] and (await second.connect())[0]
    third = communicator()
    assert (await third.connect())[0] is False
    await first.disconnect()
    fourth = communicator()
    assert (await fourth.connect())[0] is True
    await fourth.disconnect()
    await second.disconnect()
    assert quotas.SOCKETS.total == 0
