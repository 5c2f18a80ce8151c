"""The catalog in the Django admin, populated by the demo command."""

import pytest
from django.core.management import call_command

from backtests.catalog.demo import BASELINE
from backtests.models import Dataset, Run, RunMetrics
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def test_demo_loads_the_baseline_and_runs_in_every_status(capsys) -> None:
    call_command("load_demo")
    assert "added 4 datasets and 10 runs" in capsys.readouterr().out
    baseline = Dataset.objects.get(pk=BASELINE)
    assert (baseline.symbol, str(baseline.from_date), str(baseline.to_date)) == (
        "AAPL",
        "2023-01-01",
        "2023-12-31",
    )
    assert baseline.status == Dataset.Status.READY
    # Every status but RUNNING, which only a worker's claim makes; each by its real path.
    assert set(Run.objects.values_list("status", flat=True)) == set(Run.Status.values) - {"RUNNING"}
    assert RunMetrics.objects.count() == Run.objects.filter(status=Run.Status.DONE).count()
    failed = Run.objects.get(status=Run.Status.ERROR)
    assert "has no bars" in failed.error and failed.attempts == 1
    assert Run.objects.get(status=Run.Status.CANCELLED).cancel_requested


def test_demo_twice_changes_nothing(capsys) -> None:
    call_command("load_demo")
    before = list(Run.objects.values().order_by("run_id"))
    call_command("load_demo")
    assert "added 0 datasets and 0 runs" in capsys.readouterr().out
    assert list(Run.objects.values().order_by("run_id")) == before


def test_demo_runs_are_found_by_the_api_as_existing(api) -> None:
    call_command("load_demo")
    body = {
        "dataset_id": BASELINE,
        "strategy_id": "sma_crossover",
        "params": {"fast": 20, "slow": 50},
        "seed": 42,
        "slippage_fees": {"k_spread": 0.02, "fees_bps": 1},
    }
    assert api.post("/backtests", body).data["status"] == "EXISTS"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/backtests/run/",
        "/admin/backtests/run/?status__exact=DONE",
        "/admin/backtests/run/?strategy_id=momentum",
        "/admin/backtests/run/?dataset__symbol=MSFT",
        "/admin/backtests/run/?q=AAPL-2023",
        "/admin/backtests/dataset/",
        f"/admin/backtests/dataset/{BASELINE}/change/",
    ],
)
def test_admin_pages_render(admin_client, path: str) -> None:
    call_command("load_demo")
    response = admin_client.get(path)
    assert response.status_code == 200


def test_admin_run_list_is_newest_first_with_key_fields(admin_client) -> None:
    call_command("load_demo")
    page = admin_client.get("/admin/backtests/run/").content.decode()
    newest, oldest = Run.objects.order_by("-created_at")[0], Run.objects.order_by("created_at")[0]
    assert page.index(newest.run_id) < page.index(oldest.run_id)
    done = Run.objects.filter(status=Run.Status.DONE).order_by("-created_at")[0]
    computed = str(done.metrics.total_return)[:6]  # the engine's figure, as listed
    for text in ("sma_crossover", "AAPL", computed, "DONE"):
        assert text in page


def test_admin_run_page_shows_hashes_read_only(admin_client) -> None:
    call_command("load_demo")
    run = Run.objects.filter(status=Run.Status.DONE).first()
    page = admin_client.get(f"/admin/backtests/run/{run.run_id}/change/").content.decode()
    assert run.input_hash in page
    assert 'name="input_hash"' not in page
    assert 'name="manifest_path"' not in page
    assert f'href="/backtests/{run.run_id}/play"' in page  # the viewer


def test_admin_dataset_page_lists_its_runs(admin_client) -> None:
    call_command("load_demo")
    page = admin_client.get(f"/admin/backtests/dataset/{BASELINE}/change/").content.decode()
    for run in Run.objects.filter(dataset_id=BASELINE):
        assert run.run_id in page


@pytest.mark.django_db(transaction=True)
def test_admin_actions_cancel_and_rerun(admin_client) -> None:
    call_command("load_demo")
    queued = Run.objects.filter(status=Run.Status.QUEUED).first()
    done = Run.objects.filter(status=Run.Status.DONE).first()

    def act(action: str) -> tuple[str, str]:
        response = admin_client.post(
            "/admin/backtests/run/",
            {"action": action, "_selected_action": [queued.pk, done.pk]},
            follow=True,
        )
        assert response.status_code == 200
        return tuple(Run.objects.get(pk=run.pk).status for run in (queued, done))

    assert act("cancel_runs") == ("CANCELLED", "DONE")  # a finished run is left alone
    assert act("rerun_runs") == ("QUEUED", "QUEUED")


def add_run(admin_client, **changes):
    form = {
        "dataset": BASELINE,
        "strategy_id": "sma_crossover",
        "params": '{"fast": 7, "slow": 21}',
        "seed": "5",
        "slippage_fees": '{"k_spread": 0.02, "fees_bps": 1}',
        "speed": "",
        **changes,
    }
    return admin_client.post("/admin/backtests/run/add/", form, follow=True)


@pytest.mark.django_db(transaction=True)
def test_admin_add_run_goes_through_the_apis_creation(admin_client, api) -> None:
    from django_tasks_db.models import DBTaskResult

    call_command("load_demo")
    before = Run.objects.count()
    assert add_run(admin_client).status_code == 200
    assert Run.objects.count() == before + 1
    added = Run.objects.order_by("-created_at").first()
    assert added.input_hash and added.status == "QUEUED"
    assert DBTaskResult.objects.filter(args_kwargs__args=[added.run_id], status="READY").exists()
    body = {
        "dataset_id": BASELINE,
        "strategy_id": "sma_crossover",
        "params": {"fast": 7, "slow": 21},
        "seed": 5,
        "slippage_fees": {"k_spread": 0.02, "fees_bps": 1},
    }
    assert added.owner.username == "admin"  # the admin's run, as if posted with their token
    # The API sees the same run for the same user: same inputs, same owner, same hash.
    again = Api(admin_client).post("/backtests", body)
    assert (again.status_code, again.data["run_id"]) == (200, added.run_id)
    assert api.post("/backtests", body).status_code == 202  # another client's is its own
    # A second add of the same inputs is no 500 (it was an IntegrityError): a warning.
    page = add_run(admin_client).content.decode()
    assert f"A run with the same inputs exists already: {added.run_id}" in page
    assert Run.objects.count() == before + 2  # the admin's, and the anonymous client's


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"params": '{"fast": 30, "slow": 10}'}, "params", "fast must be less than slow"),
        ({"params": '{"fast": NaN}'}, "params", "params.fast"),
        ({"slippage_fees": '{"k_spread": -1, "fees_bps": 1}'}, "slippage_fees", "negative"),
        ({"seed": "-3"}, "seed", "seed"),
    ],
)
def test_admin_add_run_shows_the_apis_refusal_on_its_field(
    admin_client, changes, field, problem
) -> None:
    call_command("load_demo")
    before = Run.objects.count()
    response = add_run(admin_client, **changes)
    assert response.status_code == 200 and Run.objects.count() == before
    errors = response.context["adminform"].form.errors
    assert problem in " ".join(errors.get(field, [])), errors


def test_admin_run_page_cannot_change_a_runs_status(admin_client) -> None:
    call_command("load_demo")
    queued = Run.objects.filter(status=Run.Status.QUEUED).first()
    page = admin_client.get(f"/admin/backtests/run/{queued.run_id}/change/").content.decode()
    for field in ("status", "params", "seed", "dataset", "speed"):
        assert f'name="{field}"' not in page
    admin_client.post(f"/admin/backtests/run/{queued.run_id}/change/", {"status": "DONE"})
    queued.refresh_from_db()
    assert queued.status == "QUEUED"
