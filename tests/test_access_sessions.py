"""Browsers under AUTH_MODE=required (#18): Django's login and session, CSRF on every
unsafe request that relies on it, the viewer's page; and tokens made by the command and
the admin."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from accounts import tokens
from accounts.models import ApiToken
from backtests.models import Run
from tests.access_fixtures import bearer, make_people
from tests.catalog_factories import CREATE_BODY, make_dataset, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def required(settings):
    settings.AUTH_MODE = "required"


@pytest.fixture
def people():
    return make_people()


@pytest.fixture
def shared():
    return make_dataset()


def csrf_client(user) -> Client:
    """A browser-like client: logged in, with Django's CSRF checks enforced."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/accounts/login/")  # sets the csrftoken cookie, as any page with a form
    return browser


def test_a_session_reads_the_api(people, shared) -> None:
    browser = csrf_client(people.alice)
    assert browser.get("/backtests").status_code == 200


def test_a_session_write_without_the_csrf_token_is_403(people, shared) -> None:
    browser = csrf_client(people.alice)
    refused = browser.post("/backtests", CREATE_BODY, content_type="application/json")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "FORBIDDEN" and "CSRF" in error["message"]
    assert not Run.objects.exists()


def test_a_session_write_with_the_csrf_token_is_accepted(people, shared) -> None:
    browser = csrf_client(people.alice)
    token = browser.cookies["csrftoken"].value
    created = browser.post(
        "/backtests", CREATE_BODY, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert created.status_code == 202
    assert Run.objects.get().owner == people.alice


def test_a_session_write_from_another_origin_is_403_even_with_the_token(people, shared) -> None:
    browser = csrf_client(people.alice)
    token = browser.cookies["csrftoken"].value
    refused = browser.post(
        "/backtests",
        CREATE_BODY,
        content_type="application/json",
        headers={"X-CSRFToken": token, "Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert not Run.objects.exists()


def test_a_token_write_needs_no_csrf_token(people, shared) -> None:
    browser = Client(enforce_csrf_checks=True)
    created = browser.post(
        "/backtests",
        CREATE_BODY,
        content_type="application/json",
        headers=bearer(people.alice_token),
    )
    assert created.status_code == 202


def test_logging_in_with_a_password_gives_a_session(people, shared) -> None:
    people.bob.set_password("bob-pw-long-enough-1")
    people.bob.save()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/accounts/login/")
    assert page.status_code == 200 and b'name="username"' in page.content
    response = browser.post(
        "/accounts/login/",
        {
            "username": "bob",
            "password": "bob-pw-long-enough-1",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
            "next": "/backtests",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/backtests"
    assert browser.get("/backtests").status_code == 200


def test_the_viewer_sends_an_anonymous_browser_to_log_in(people, shared) -> None:
    run = make_run(shared, owner=people.alice, status="QUEUED")
    response = Client().get(f"/backtests/{run.run_id}/play")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/backtests/{run.run_id}/play"


def test_the_viewer_of_another_users_run_is_403(people, shared) -> None:
    run = make_run(shared, owner=people.alice, status="QUEUED")
    browser = Client()
    browser.force_login(people.bob)
    refused = browser.get(f"/backtests/{run.run_id}/play")
    assert refused.status_code == 403
    assert b"another user" in refused.content
    browser.force_login(people.alice)
    assert browser.get(f"/backtests/{run.run_id}/play").status_code == 200


def test_create_token_prints_a_working_token_last(capsys, shared) -> None:
    call_command("create_token", "carol", "--create-user", "--name", "ci")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert tokens.SHAPE.fullmatch(token)
    row = ApiToken.objects.get(user__username="carol")
    assert row.name == "ci" and row.prefix == token[:10] and row.digest != token
    assert Client().get("/backtests", headers=bearer(token)).status_code == 200
    # A second token for the same user, without --create-user.
    call_command("create_token", "carol")
    assert ApiToken.objects.filter(user__username="carol").count() == 2


def test_create_token_refuses_an_unknown_user_without_create_user() -> None:
    with pytest.raises(CommandError, match="--create-user"):
        call_command("create_token", "nobody")
    assert not get_user_model().objects.filter(username="nobody").exists()


def test_a_revoked_token_is_refused_at_once(people, shared) -> None:
    assert Client().get("/backtests", headers=bearer(people.bob_token)).status_code == 200
    tokens.revoke(ApiToken.objects.get(user=people.bob))
    assert Client().get("/backtests", headers=bearer(people.bob_token)).status_code == 401


def test_an_inactive_users_token_is_refused(people, shared) -> None:
    people.bob.is_active = False
    people.bob.save()
    assert Client().get("/backtests", headers=bearer(people.bob_token)).status_code == 401


def test_the_admin_makes_a_token_shown_once_and_revokes_it(people, admin_client) -> None:
    response = admin_client.post(
        "/admin/accounts/apitoken/add/", {"user": people.bob.pk, "name": "laptop"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    token = next(m.split(": ")[-1] for m in shown if "shown this once" in m)
    assert Client().get("/strategies", headers=bearer(token)).status_code == 200
    row = ApiToken.objects.get(name="laptop")
    listing = admin_client.get("/admin/accounts/apitoken/")
    assert row.prefix.encode() in listing.content and token.encode() not in listing.content
    admin_client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    assert Client().get("/strategies", headers=bearer(token)).status_code == 401


def test_an_upload_records_its_owner_and_only_the_owner_replaces_it(people, shared) -> None:
    csv = b"ts,open,high,low,close,volume\n" + b"".join(
        f"2024-01-0{d}T00:00:00Z,1,2,0.5,1.5,10\n".encode() for d in range(1, 6)
    )

    def upload(token, public="false"):
        return Client().generic(
            "POST",
            f"/datasets?dataset_id=MINE&symbol=XYZ&public={public}",
            csv,
            CONTENT_TYPE="text/csv",
            headers=bearer(token),
        )

    created = upload(people.alice_token, public="true")
    assert created.status_code == 201, created.content
    assert created.json()["owner"] == "alice" and created.json()["public"] is True
    assert upload(people.bob_token).status_code == 403
    assert upload(people.alice_token).status_code == 200
    # Public: bob reads it and runs on it.
    assert Client().get("/datasets/MINE", headers=bearer(people.bob_token)).status_code == 200
    body = json.dumps({**CREATE_BODY, "dataset_id": "MINE", "params": {"fast": 2, "slow": 3}})
    ran = Client().generic(
        "POST",
        "/backtests",
        body,
        CONTENT_TYPE="application/json",
        headers=bearer(people.bob_token),
    )
    assert ran.status_code == 202, ran.content


def test_a_token_is_trusted_for_seconds_then_looked_up_again(people, shared, monkeypatch) -> None:
    from django.utils import timezone

    assert Client().get("/strategies", headers=bearer(people.bob_token)).status_code == 200
    # Revoked behind this process's back (another process's admin, say): trusted a moment.
    ApiToken.objects.filter(user=people.bob).update(revoked_at=timezone.now())
    assert Client().get("/strategies", headers=bearer(people.bob_token)).status_code == 200
    clock = [tokens.time.monotonic() + tokens.TRUSTED_SECONDS + 0.1]
    monkeypatch.setattr(tokens.time, "monotonic", lambda: clock[0])
    assert Client().get("/strategies", headers=bearer(people.bob_token)).status_code == 401
