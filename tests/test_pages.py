"""The web app's pages (#19), through Django's test client: the run list, a run's page,
the new-run form and the comparison; in a real browser in test_e2e_pages.py."""

import re
from datetime import date

import pytest
from django.test import Client

from backtests.catalog.bars_import import store_bars
from backtests.engine import synthetic
from backtests.jobs.execute import execute
from backtests.models import Run
from backtests.pages.formatting import METRICS
from tests.access_fixtures import make_people
from tests.catalog_factories import make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dataset():
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 8))
    return store_bars("AAPL-1m", series, "AAPL").dataset


def done(dataset, **fields) -> Run:
    run = make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20}, **fields)
    assert execute(run.run_id, "test") == "DONE"
    return Run.objects.get(pk=run.pk)


def test_the_list_shows_runs_with_their_status_and_figures(client, dataset) -> None:
    finished = done(dataset)
    queued = make_run(dataset, status="QUEUED")
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-run="{finished.run_id}" data-status="DONE"' in html
    assert f'data-run="{queued.run_id}" data-status="QUEUED"' in html
    assert "fast=5, slow=20" in html and "AAPL" in html and ">1m<" in html
    assert "live_status.js" in html  # QUEUED rows follow their run


def test_the_list_filters_and_pages(client, dataset) -> None:
    for seed in range(30):
        make_run(dataset, status="DONE" if seed % 2 else "ERROR", seed=seed)
    errors = client.get("/", {"status": "ERROR"}).content.decode()
    assert errors.count('data-status="ERROR"') == 15 and 'data-status="DONE"' not in errors
    first = client.get("/").content.decode()
    assert first.count("data-run=") == 25 and "page 1 of 2" in first
    second = client.get("/", {"page": "2"}).content.decode()
    assert second.count("data-run=") == 5
    refused = client.get("/", {"status": "SLEEPING"})
    assert refused.status_code == 400 and b"status: must be one of" in refused.content


def test_a_runs_page_has_every_statistic_and_its_trades(client, api, dataset) -> None:
    run = done(dataset)
    html = client.get(f"/runs/{run.run_id}").content.decode()
    metrics = api.get(f"/backtests/{run.run_id}").data["metrics"]
    cells = dict(re.findall(r'data-metric="(\w+)" data-value="([^"]*)"', html))
    assert set(cells) == set(METRICS)
    for name, value in cells.items():
        expected = metrics[name]
        assert (value == "") if expected is None else float(value) == pytest.approx(expected)
    trades = api.get(f"/backtests/{run.run_id}/trades", {"limit": 500}).data
    assert html.count("data-trade=") == min(50, trades["total"])
    first_entry = re.search(r'data-trade="0" data-entry="([^"]+)"', html).group(1)
    assert first_entry == trades["items"][0]["entry_ts"]
    assert f"/backtests/{run.run_id}/trades?format=csv" in html
    assert f"/backtests/{run.run_id}/play" in html and f"/runs/new?from={run.run_id}" in html


def test_trades_sort_by_pnl(client, api, dataset) -> None:
    run = done(dataset)
    html = client.get(f"/runs/{run.run_id}", {"sort": "-pnl"}).content.decode()
    shown = [float(p) for p in re.findall(r'data-pnl="([^"]+)"', html)]
    assert shown == sorted(shown, reverse=True) and len(shown) > 1


def test_an_error_runs_page_says_why(client, dataset) -> None:
    run = make_run(dataset, status="ERROR", error="sma_crossover: fast must be less than slow")
    html = client.get(f"/runs/{run.run_id}").content.decode()
    assert 'id="run-error"' in html and "fast must be less than slow" in html
    assert 'id="play-link"' not in html


def test_an_unknown_run_is_a_404_page(client) -> None:
    assert client.get("/runs/01HM65JQM043J5BD14TQ8NBVDX").status_code == 404


def test_the_form_lists_strategies_with_their_bounds(client, dataset) -> None:
    html = client.get("/runs/new").content.decode()
    assert 'name="sma_crossover.fast"' in html and 'min="1"' in html
    assert "fast must be less than slow" in html  # the constraint, shown
    assert 'value="AAPL-1m"' in html


def test_the_form_creates_a_run_and_goes_to_its_page(client, dataset) -> None:
    form = {
        "dataset_id": "AAPL-1m",
        "strategy_id": "sma_crossover",
        "sma_crossover.fast": "5",
        "sma_crossover.slow": "20",
        "k_spread": "0.1",
        "fees_bps": "1",
        "seed": "3",
    }
    response = client.post("/runs/new", form)
    assert response.status_code == 302
    run = Run.objects.get()
    assert response["Location"] == f"/runs/{run.run_id}"
    assert run.params == {"fast": 5, "slow": 20} and run.seed == 3


def test_the_forms_refusals_are_shown_by_field(client, dataset) -> None:
    form = {
        "dataset_id": "AAPL-1m",
        "strategy_id": "sma_crossover",
        "sma_crossover.fast": "0",
        "sma_crossover.slow": "abc",
        "k_spread": "-1",
        "fees_bps": "1",
        "seed": "3",
    }
    response = client.post("/runs/new", form)
    assert response.status_code == 422
    html = response.content.decode()
    assert re.search(r'data-error-for="sma_crossover.fast">must be between 1 and', html)
    assert re.search(r'data-error-for="sma_crossover.slow">must be', html)
    assert re.search(r'data-error-for="k_spread">must not be negative', html)
    assert not Run.objects.exists()
    swapped = client.post(
        "/runs/new",
        {**form, "sma_crossover.fast": "30", "sma_crossover.slow": "20", "k_spread": "0"},
    )
    assert swapped.status_code == 422 and b"fast must be less than slow" in swapped.content


def test_run_again_prefills_the_form(client, dataset) -> None:
    run = make_run(dataset, status="DONE", params={"fast": 7, "slow": 33}, seed=99)
    html = client.get("/runs/new", {"from": run.run_id}).content.decode()
    assert 'name="sma_crossover.fast" type="number" value="7"' in html
    assert 'name="seed" type="number" step="1" min="0" value="99"' in html


def test_compare_shows_two_runs_side_by_side(client, dataset) -> None:
    a = done(dataset, seed=1)
    b = done(dataset, seed=2, slippage_fees={"k_spread": 0.3, "fees_bps": 5})
    html = client.get("/runs/compare", {"ids": f"{a.run_id},{b.run_id}"}).content.decode()
    assert f'data-run-column="{a.run_id}"' in html and f'data-run-column="{b.run_id}"' in html
    assert html.count('<tr data-metric="') == len(METRICS)
    one = client.get("/runs/compare", {"ids": a.run_id})
    assert one.status_code == 400 and b"Compare 2 to 5" in one.content


def test_pages_need_a_login_under_auth_mode_required(settings, dataset) -> None:
    settings.AUTH_MODE = "required"
    people = make_people()
    mine = make_run(dataset, status="QUEUED", owner=people.alice)
    for path in ("/", "/runs/new", f"/runs/{mine.run_id}", "/runs/compare?ids=a,b"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    bob = Client()
    bob.force_login(people.bob)
    assert bob.get(f"/runs/{mine.run_id}").status_code == 403
    assert mine.run_id not in bob.get("/").content.decode()
    alice = Client()
    alice.force_login(people.alice)
    assert alice.get(f"/runs/{mine.run_id}").status_code == 200


def test_the_favicon_is_found(client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith("favicon.svg")
