"""The sweeps API (backtests/sweeps/): create, progress, results, heatmap, cancel, promote,
each answer checked against docs/api/openapi.yaml; chunks computed in the test's process."""

import csv
import io
import json
import re
from datetime import date
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from backtests.catalog.bars_import import store_bars
from backtests.engine import run as engine
from backtests.engine import synthetic
from backtests.jobs.execute import execute
from backtests.models import Sweep, SweepChunk, SweepResult
from backtests.sweeps import lifecycle
from backtests.sweeps.execute import execute_chunk

# The views query in worker threads: on PostgreSQL they need a committed database.
pytestmark = pytest.mark.django_db(transaction=True)

COSTS = {"k_spread": 0.5, "fees_bps": 1}
BODY = {
    "dataset_id": "AAPL-1m",
    "strategy_id": "sma_crossover",
    "grid": {"fast": [3, 5], "slow": {"from": 10, "to": 30, "step": 10}},
    "slippage_fees": COSTS,
}


@pytest.fixture
def dataset(db):
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 14), 130.0)
    return store_bars("AAPL-1m", series, "AAPL").dataset


def compute_all(sweep_id: str, worker: str = "w1") -> None:
    """Every chunk of the sweep, as a worker's tasks would compute them."""
    for chunk_id in SweepChunk.objects.filter(sweep_id=sweep_id).values_list("pk", flat=True):
        execute_chunk(chunk_id, worker)


def create(api, body=BODY, **headers):
    response = api.post("/sweeps", body, headers=headers)
    assert response.status_code in (200, 202), response.data
    return response.data


def normal_run(dataset, params: dict, tmp: Path) -> dict:
    """The metrics of a normal run of these inputs (the engine's own entry point)."""
    inputs = engine.RunInputs("check", dataset.dataset_id, "sma_crossover", params, 0, COSTS)
    result = engine.run(
        inputs,
        Path(settings.DATA_DIR) / dataset.bars_path,
        tmp,
        dataset.bars_sha256,
        interval=dataset.interval,
        tz=dataset.tz,
    )
    return result.metrics


def test_a_sweep_is_queued_in_chunks_and_every_variant_equals_a_normal_run(
    api, dataset, settings, tmp_path
) -> None:
    settings.SWEEP_CHUNK_VARIANTS = 2
    created = create(api)
    assert created["status"] == "QUEUED" and created["total"] == 6
    sweep_id = created["sweep_id"]
    assert SweepChunk.objects.filter(sweep_id=sweep_id).count() == 3
    queued = api.get(f"/sweeps/{sweep_id}").data
    assert (queued["status"], queued["done"], queued["best"]) == ("QUEUED", 0, None)

    compute_all(sweep_id)
    detail = api.get(f"/sweeps/{sweep_id}").data
    assert (detail["status"], detail["done"], detail["total"], detail["skipped"]) == (
        "DONE",
        6,
        6,
        0,
    )
    assert detail["started_at"] <= detail["finished_at"]
    items = api.get(f"/sweeps/{sweep_id}/results", {"limit": 100}).data["items"]
    assert [item["variant"] for item in items] == list(range(6))
    for item in items:
        assert item["metrics"] == normal_run(dataset, item["params"], tmp_path / "run")
    best = max(items, key=lambda item: (item["metrics"]["sharpe"], -item["variant"]))
    assert detail["best"]["params"] == best["params"]
    assert detail["best"]["metrics"] == best["metrics"]


def test_constraint_breaking_variants_are_skipped_and_counted(api, dataset) -> None:
    body = {**BODY, "grid": {"fast": [10, 20, 30], "slow": [20, 30]}}
    created = create(api, body)
    assert created["total"] == 3
    detail = api.get(f"/sweeps/{created['sweep_id']}").data
    assert (detail["total"], detail["skipped"]) == (3, 3)


def test_a_grid_of_nothing_but_constraint_breakers_is_422(api, dataset) -> None:
    response = api.post("/sweeps", {**BODY, "grid": {"fast": [30], "slow": [20, 30]}})
    assert response.status_code == 422
    assert "fast must be less than slow" in response.data["error"]["message"]


def test_random_draws_max_variants_repeatably(api, dataset) -> None:
    body = {
        **BODY,
        "grid": {
            "fast": {"from": 1, "to": 20, "step": 1},
            "slow": {"from": 25, "to": 60, "step": 5},
        },
        "method": "random",
        "max_variants": 7,
        "seed": 11,
    }
    first = create(api, body)
    assert first["total"] == 7
    numbers = list(
        SweepChunk.objects.filter(sweep_id=first["sweep_id"]).values_list("variants", flat=True)
    )
    again = create(api, body)
    assert (again["status"], again["sweep_id"]) == ("EXISTS", first["sweep_id"])
    Sweep.objects.all().delete()
    redrawn = create(api, body)
    assert redrawn["sweep_id"] != first["sweep_id"]
    chunks = SweepChunk.objects.filter(sweep_id=redrawn["sweep_id"])
    assert list(chunks.values_list("variants", flat=True)) == numbers
    other = create(api, {**body, "seed": 12})
    other_numbers = SweepChunk.objects.filter(sweep_id=other["sweep_id"])
    assert list(other_numbers.values_list("variants", flat=True)) != numbers


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"grid": {"fast": [3], "nope": [1]}}, "grid.nope"),
        ({"grid": {"fast": [3, 0]}}, "grid.fast[1]"),
        ({"grid": {"fast": [3, 3.5]}}, "grid.fast[1]"),
        ({"grid": {"fast": [3, 3]}}, "grid.fast"),
        ({"grid": {"fast": []}}, "grid.fast"),
        ({"grid": {"fast": {"from": 5, "to": 1, "step": 1}}}, "grid.fast.to"),
        ({"grid": {"fast": {"from": 1, "to": 5, "step": 0}}}, "grid.fast.step"),
        ({"grid": {"fast": {"from": 1, "to": 5, "step": 0.5}}}, "grid.fast.step"),
        ({"grid": {"fast": {"from": 1, "to": 5}}}, "grid.fast"),
        ({"grid": [1, 2]}, "grid"),
        ({"method": "bayes"}, "method"),
        ({"method": "random"}, "max_variants"),
        ({"maximize": "luck"}, "maximize"),
        ({"seed": -1}, "seed"),
        ({"slippage_fees": {"k_spread": 0.5}}, "slippage_fees.fees_bps"),
        ({"train": 100}, "train"),
        ({"method": "walk_forward", "test": 10}, "train"),
        ({"method": "walk_forward", "train": "3 days", "test": 10}, "train"),
        ({"strategy_id": "nope"}, "strategy_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(api, dataset, change, field) -> None:
    response = api.post("/sweeps", {**BODY, **change})
    assert response.status_code == 422, response.data
    assert field in response.data["error"]["details"], response.data


def test_more_variants_than_the_limit_is_422(api, dataset, settings) -> None:
    settings.SWEEP_MAX_VARIANTS = 10
    body = {**BODY, "grid": {"fast": [1, 2, 3, 4], "slow": [10, 20, 30]}}
    response = api.post("/sweeps", body)
    assert response.status_code == 422
    assert "SWEEP_MAX_VARIANTS" in response.data["error"]["details"]["grid"]
    listed = {**BODY, "grid": {"fast": list(range(1, 12))}}
    assert "SWEEP_MAX_VARIANTS" in api.post("/sweeps", listed).data["error"]["details"]["grid.fast"]
    wide = {**BODY, "grid": {"fast": {"from": 1, "to": 1000, "step": 1}}}
    assert "SWEEP_MAX_VARIANTS" in api.post("/sweeps", wide).data["error"]["details"]["grid.fast"]
    # random draws max_variants of a larger grid; max_variants itself is bounded
    drawn = {**body, "method": "random", "max_variants": 10}
    assert api.post("/sweeps", drawn).status_code == 202
    assert api.post("/sweeps", {**drawn, "max_variants": 11}).status_code == 422
    capped = {**BODY, "max_variants": 5}
    assert "max_variants" in api.post("/sweeps", capped).data["error"]["details"]["grid"]


def test_the_idempotency_key_rules_are_the_runs(api, dataset) -> None:
    first = create(api, BODY, **{"Idempotency-Key": "k-1"})
    again = create(api, BODY, **{"Idempotency-Key": "k-1"})
    assert (again["status"], again["sweep_id"]) == ("EXISTS", first["sweep_id"])
    other = {**BODY, "seed": 3}
    response = api.post("/sweeps", other, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 409 and response.data["error"]["code"] == "IDP_CONFLICT"


def test_an_unknown_dataset_or_sweep_is_404(api, dataset) -> None:
    response = api.post("/sweeps", {**BODY, "dataset_id": "NOPE"})
    assert response.data["error"]["code"] == "DATASET_NOT_FOUND"
    for path in ("", "/results", "/heatmap?x=fast&y=slow"):
        response = api.get(f"/sweeps/01HNOSUCHSWEEP{path}")
        assert response.status_code == 404
        assert response.data["error"]["code"] == "SWEEP_NOT_FOUND"
    assert api.get("/sweeps/a/b/c").status_code == 404


def test_results_sort_by_any_metric_with_nulls_last_and_page(api, dataset) -> None:
    created = create(api)
    compute_all(created["sweep_id"])
    path = f"/sweeps/{created['sweep_id']}/results"
    every = api.get(path, {"order": "-sharpe", "limit": 100}).data
    sharpes = [item["metrics"]["sharpe"] for item in every["items"]]
    known = [s for s in sharpes if s is not None]
    assert known == sorted(known, reverse=True) and sharpes[: len(known)] == known
    ascending = api.get(path, {"order": "total_return", "limit": 2, "offset": 1}).data
    returns = sorted(i["metrics"]["total_return"] for i in every["items"])
    assert [i["metrics"]["total_return"] for i in ascending["items"]] == returns[1:3]
    assert (ascending["total"], ascending["limit"], ascending["offset"]) == (6, 2, 1)
    assert api.get(path, {"order": "-luck"}).status_code == 422


def test_results_as_csv(api, dataset, client) -> None:
    created = create(api)
    compute_all(created["sweep_id"])
    response = client.get(
        f"/sweeps/{created['sweep_id']}/results", {"format": "csv", "order": "-sharpe"}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 6 and {"variant", "fast", "slow", "sharpe", "error"} <= set(rows[0])
    best = SweepResult.objects.filter(sweep_id=created["sweep_id"]).order_by("-sharpe").first()
    assert float(rows[0]["sharpe"]) == best.sharpe and int(rows[0]["fast"]) == best.params["fast"]


def test_the_heatmap_aggregates_the_other_parameters(api, dataset) -> None:
    body = {
        **BODY,
        "strategy_id": "mean_reversion",
        "grid": {"window": [10, 20], "band": [0.001, 0.002, 0.004]},
    }
    created = create(api, body)
    compute_all(created["sweep_id"])
    path = f"/sweeps/{created['sweep_id']}/heatmap"
    heat = api.get(path, {"x": "window", "y": "band", "metric": "total_return"}).data
    assert heat["x"] == [10, 20] and heat["y"] == [0.001, 0.002, 0.004]
    rows = SweepResult.objects.filter(sweep_id=created["sweep_id"])
    for j, band in enumerate(heat["y"]):
        for i, window in enumerate(heat["x"]):
            [row] = [r for r in rows if r.params == {"window": window, "band": band}]
            assert heat["z"][j][i] == row.total_return
    # One axis: the other is aggregated away.
    mean = api.get(path, {"x": "band", "y": "window", "metric": "total_return", "agg": "mean"})
    z = mean.data["z"]
    assert len(z) == 2 and len(z[0]) == 3
    bad = api.get(path, {"x": "window", "y": "window"})
    assert bad.status_code == 422 and "y" in bad.data["error"]["details"]
    assert api.get(path, {"x": "window"}).status_code == 422
    assert api.get(path, {"x": "window", "y": "band", "agg": "sum"}).status_code == 422


def test_cancel_stops_the_chunks_not_started(api, dataset, settings) -> None:
    settings.SWEEP_CHUNK_VARIANTS = 2
    created = create(api)
    sweep_id = created["sweep_id"]
    first = SweepChunk.objects.filter(sweep_id=sweep_id).order_by("number").first()
    assert execute_chunk(first.pk, "w1") == "DONE"
    response = api.post(f"/sweeps/{sweep_id}/cancel", {})
    assert response.status_code == 200 and response.data["status"] == "CANCELLED"
    assert api.post(f"/sweeps/{sweep_id}/cancel", {}).status_code == 200  # a repeat
    compute_all(sweep_id, "w2")  # the queue still holds their tasks: they do nothing
    chunks = SweepChunk.objects.filter(sweep_id=sweep_id).order_by("number")
    assert list(chunks.values_list("status", flat=True)) == ["DONE", "CANCELLED", "CANCELLED"]
    detail = api.get(f"/sweeps/{sweep_id}").data
    assert (detail["status"], detail["done"]) == ("CANCELLED", 2)


def test_a_running_chunk_stops_at_its_next_variant(api, dataset, monkeypatch) -> None:
    from backtests.sweeps import execute as execute_module

    created = create(api)
    chunk = SweepChunk.objects.get(sweep_id=created["sweep_id"])
    monkeypatch.setattr(execute_module, "STOP_CHECK_SECONDS", 0.0)
    real = execute_module.sweep.evaluate_one
    calls = []

    def cancel_after_one(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            lifecycle.cancel(created["sweep_id"])
        return real(*args, **kwargs)

    monkeypatch.setattr(execute_module.sweep, "evaluate_one", cancel_after_one)
    assert execute_chunk(chunk.pk, "w1") == "CANCELLED"
    assert len(calls) == 1
    assert not SweepResult.objects.filter(sweep_id=created["sweep_id"]).exists()


def test_a_finished_sweep_cannot_be_cancelled(api, dataset) -> None:
    created = create(api)
    compute_all(created["sweep_id"])
    response = api.post(f"/sweeps/{created['sweep_id']}/cancel", {})
    assert response.status_code == 409 and response.data["error"]["details"]["status"] == "DONE"


def test_a_lost_workers_chunk_is_taken_again_without_duplicates(api, dataset, settings) -> None:
    settings.SWEEP_CHUNK_VARIANTS = 3
    created = create(api)
    sweep_id = created["sweep_id"]
    chunk = SweepChunk.objects.filter(sweep_id=sweep_id).order_by("number").first()
    assert lifecycle.claim(chunk.pk, "lost")  # the worker is killed before it finishes
    SweepChunk.objects.filter(pk=chunk.pk).update(lease_expires_at="2000-01-01T00:00:00Z")
    assert lifecycle.requeue_expired() == [chunk.pk]
    compute_all(sweep_id, "w2")
    assert not lifecycle.finish_done(chunk.pk, "lost", [], "sharpe")  # too late: refused
    variants = list(SweepResult.objects.filter(sweep_id=sweep_id).values_list("variant", flat=True))
    assert sorted(variants) == list(range(6))
    detail = api.get(f"/sweeps/{sweep_id}").data
    assert (detail["status"], detail["done"]) == ("DONE", 6)


def test_a_chunk_without_a_task_gets_one(api, dataset) -> None:
    from django_tasks_db.models import DBTaskResult

    created = create(api)
    DBTaskResult.objects.all().delete()
    [chunk_id] = SweepChunk.objects.filter(sweep_id=created["sweep_id"]).values_list(
        "pk", flat=True
    )
    assert lifecycle.requeue_orphans() == [chunk_id]
    assert lifecycle.requeue_orphans() == []


def test_promote_makes_a_normal_playable_run_of_the_variant(api, dataset, tmp_path) -> None:
    created = create(api)
    compute_all(created["sweep_id"])
    variant = SweepResult.objects.get(sweep_id=created["sweep_id"], variant=4)
    response = api.post(f"/sweeps/{created['sweep_id']}/promote", {"params": variant.params})
    assert response.status_code == 202 and response.data["status"] == "QUEUED"
    run_id = response.data["run_id"]
    assert execute(run_id, "w1") == "DONE"
    run = api.get(f"/backtests/{run_id}").data
    assert run["params"] == variant.params and run["slippage_fees"] == COSTS
    assert run["metrics"]["sharpe"] == variant.sharpe
    assert run["metrics"]["total_return"] == variant.total_return
    again = api.post(f"/sweeps/{created['sweep_id']}/promote", {"params": variant.params})
    assert (again.status_code, again.data["run_id"]) == (200, run_id)
    off_grid = api.post(
        f"/sweeps/{created['sweep_id']}/promote", {"params": {"fast": 4, "slow": 10}}
    )
    assert off_grid.status_code == 422 and "params" in off_grid.data["error"]["details"]
    breaking = api.post(
        f"/sweeps/{created['sweep_id']}/promote", {"params": {"fast": 50, "slow": 10}}
    )
    assert breaking.status_code == 422


def test_a_sweep_lists_newest_first(api, dataset) -> None:
    first = create(api)
    second = create(api, {**BODY, "seed": 5})
    listed = api.get("/sweeps").data
    assert [item["sweep_id"] for item in listed["items"]] == [second["sweep_id"], first["sweep_id"]]
    assert listed["total"] == 2


async def read_all(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


def test_the_events_stream_reports_progress_and_ends(api, dataset, client) -> None:
    created = create(api)
    compute_all(created["sweep_id"])
    response = client.get(f"/sweeps/{created['sweep_id']}/events")
    assert response["Content-Type"] == "text/event-stream"
    text = async_to_sync(read_all)(response.streaming_content).decode()
    assert text.startswith("event: progress\ndata: ")
    assert '"status":"DONE"' in text and '"done":6' in text
    assert text.endswith("event: end\ndata: {}\n\n")


def test_the_active_sweeps_quota(api, dataset, settings) -> None:
    settings.SWEEPS_MAX_ACTIVE = 1
    create(api)
    response = api.post("/sweeps", {**BODY, "seed": 9})
    assert response.status_code == 429 and response["Retry-After"]


def test_walk_forward_lists_each_window_and_plays_its_stitched_run(api, dataset, client) -> None:
    body = {
        **BODY,
        "method": "walk_forward",
        "grid": {"fast": [3, 5], "slow": [10, 20]},
        "train": 1500,
        "test": 500,
    }
    created = create(api, body)
    sweep_id = created["sweep_id"]
    windows = (dataset.bars - 1500) // 500
    assert created["total"] == windows  # one chunk per window
    compute_all(sweep_id)
    detail = api.get(f"/sweeps/{sweep_id}").data
    assert detail["status"] == "DONE" and detail["done"] == windows
    assert detail["walk_forward"] == {
        "train": {"bars": 1500},
        "test": {"bars": 500},
        "step": {"bars": 500},
    }
    listed = detail["windows"]
    assert [w["window"] for w in listed] == list(range(windows))
    for w in listed:
        assert w["test"]["from_bar"] == w["train"]["to_bar"] + 1
        assert w["test"]["to_bar"] - w["test"]["from_bar"] == 499
        assert w["params"] in [{"fast": f, "slow": s} for f in (3, 5) for s in (10, 20)]
        assert w["test_metrics"]["sharpe"] is not None or w["test_metrics"]["trades"] == 0
    oos = detail["oos_run_id"]
    assert detail["best"]["oos_run_id"] == oos
    run = api.get(f"/backtests/{oos}").data
    assert run["status"] == "DONE" and run["metrics"]["total_return"] is not None
    equity = api.get(f"/backtests/{oos}/equity").data
    assert len(equity["equity"]) == windows * 500
    assert client.get(f"/backtests/{oos}/play").status_code == 200


def test_walk_forward_windows_that_do_not_fit_are_422(api, dataset) -> None:
    body = {**BODY, "method": "walk_forward", "train": 10**6, "test": 500}
    response = api.post("/sweeps", body)
    assert response.status_code == 422 and "no whole window" in response.data["error"]["message"]
    overlapping = {**BODY, "method": "walk_forward", "train": 100, "test": 500, "step": 100}
    assert "overlap" in api.post("/sweeps", overlapping).data["error"]["message"]


def test_another_users_sweep_is_403_and_not_listed(api, dataset, settings) -> None:
    from tests.access_fixtures import bearer, make_people

    settings.AUTH_MODE = "required"
    people = make_people()
    response = api.client.post(
        "/sweeps",
        BODY,
        content_type="application/json",
        headers=bearer(people.alice_token),
    )
    assert response.status_code == 202
    sweep_id = response.json()["sweep_id"]
    for path in ("", "/results", "/heatmap?x=fast&y=slow", "/events"):
        answer = api.client.get(f"/sweeps/{sweep_id}{path}", headers=bearer(people.bob_token))
        assert answer.status_code == 403, path
    cancel = api.client.post(
        f"/sweeps/{sweep_id}/cancel",
        {},
        content_type="application/json",
        headers=bearer(people.bob_token),
    )
    assert cancel.status_code == 403
    assert api.client.get("/sweeps", headers=bearer(people.bob_token)).json()["total"] == 0
    assert api.client.get("/sweeps", headers=bearer(people.alice_token)).json()["total"] == 1
    assert api.client.get("/sweeps", headers=bearer(people.staff_token)).json()["total"] == 1
    assert api.client.get("/sweeps").status_code == 401


def test_the_admin_lists_sweeps_read_only_and_cancels_them(api, dataset, admin_client) -> None:
    created = create(api)
    sweep_id = created["sweep_id"]
    assert admin_client.get("/admin/backtests/sweep/").status_code == 200
    page = admin_client.get(f"/admin/backtests/sweep/{sweep_id}/change/")
    assert page.status_code == 200 and b'name="status"' not in page.content
    assert admin_client.get("/admin/backtests/sweep/add/").status_code == 403
    admin_client.post(
        "/admin/backtests/sweep/",
        {"action": "cancel_sweeps", "_selected_action": [sweep_id]},
    )
    assert Sweep.objects.get(pk=sweep_id).status == "CANCELLED"


def test_the_sweep_page_shows_progress_heatmap_results_and_promotes(api, dataset, client) -> None:
    created = create(api)
    sweep_id = created["sweep_id"]
    waiting = client.get(f"/runs/sweeps/{sweep_id}")
    assert waiting.status_code == 200 and b'id="waiting"' in waiting.content
    compute_all(sweep_id)
    page = client.get(f"/runs/sweeps/{sweep_id}", {"order": "-total_return"})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="waiting"' not in html
    rows = SweepResult.objects.filter(sweep_id=sweep_id).order_by("-total_return")
    variants = [int(v) for v in re.findall(r'<tr data-variant="(\d+)">', html)]
    assert variants == [r.variant for r in rows]
    cells = re.findall(r'<td class="num heat-\d|<td class="num none', html)
    assert len(cells) == 6  # fast x slow: 2 x 3
    assert client.get("/runs/sweeps").status_code == 200
    assert sweep_id in client.get("/runs/sweeps").content.decode()
    best = rows.first()
    promoted = client.post(f"/runs/sweeps/{sweep_id}/promote", {"params": json.dumps(best.params)})
    assert promoted.status_code == 302 and promoted["Location"].startswith("/runs/")
    run_id = promoted["Location"].rsplit("/", 1)[1]
    assert api.get(f"/backtests/{run_id}").data["params"] == best.params
    refused = client.post(f"/runs/sweeps/{sweep_id}/promote", {"params": '{"fast": 4}'})
    assert refused.status_code == 422
    assert client.get("/runs/sweeps/01HNOSUCHSWEEP").status_code == 404


def test_a_worker_lost_while_stitching_leaves_the_window_to_another(api, dataset) -> None:
    body = {**BODY, "method": "walk_forward", "grid": {"fast": [3], "slow": [10, 20]}}
    created = create(api, {**body, "train": "4d", "test": "2d"})
    chunks = list(SweepChunk.objects.filter(sweep_id=created["sweep_id"]).order_by("number"))
    assert len(chunks) >= 2
    for chunk in chunks[:-1]:
        assert execute_chunk(chunk.pk, "w1") == "DONE"
    last = chunks[-1]
    assert lifecycle.claim(last.pk, "lost")
    summary = {"window": last.window, "params": None}
    assert lifecycle.finish_window(last.pk, "lost", summary)[1]  # last: left RUNNING
    # ...and the worker dies before the stitched run is recorded.
    SweepChunk.objects.filter(pk=last.pk).update(lease_expires_at="2000-01-01T00:00:00Z")
    assert lifecycle.requeue_expired() == [last.pk]
    assert execute_chunk(last.pk, "w2") == "DONE"
    detail = api.get(f"/sweeps/{created['sweep_id']}").data
    assert detail["status"] == "DONE" and detail["oos_run_id"]
    assert [w["window"] for w in detail["windows"]] == [c.window for c in chunks]
    assert detail["done"] == detail["total"] == len(chunks)
    assert all(w["params"] for w in detail["windows"])  # the lost one's summary replaced


def test_the_new_sweep_form_creates_one_and_shows_refusals_by_field(dataset, client) -> None:
    form = client.get("/runs/sweeps/new")
    assert form.status_code == 200 and b'name="sma_crossover.fast"' in form.content
    fields = {
        "dataset_id": "AAPL-1m",
        "strategy_id": "sma_crossover",
        "sma_crossover.fast": "3, 5",
        "sma_crossover.slow": "10 to 30 step 10",
        "method": "grid",
        "maximize": "total_return",
        "seed": "0",
        "k_spread": "0.5",
        "fees_bps": "1",
    }
    created = client.post("/runs/sweeps/new", fields)
    assert created.status_code == 302, created.content[:500]
    sweep_id = created["Location"].rsplit("/", 1)[1]
    row = Sweep.objects.get(pk=sweep_id)
    assert row.grid == {"fast": [3, 5], "slow": [10, 20, 30]} and row.maximize == "total_return"
    refused = client.post("/runs/sweeps/new", {**fields, "sma_crossover.fast": "3, 0"})
    assert refused.status_code == 422
    html = refused.content.decode()
    assert re.search(r'data-error-for="sma_crossover.fast">[^<]*between 1 and', html)
    assert 'value="3, 0"' in html  # what was typed is kept


@pytest.mark.parametrize(
    "grid",
    [
        {"fast": [float("nan")]},
        {"fast": [float("inf")]},
        {"fast": {"from": 1, "to": float("inf"), "step": 1}},
        {"fast": {"from": 1, "to": 5, "step": float("nan")}},
        {"fast": {"from": 1, "to": 5, "step": float("inf")}},
        {"fast": {"from": 1, "to": 5, "step": 1e-300}},
        {"fast": {"from": 1, "to": 10**400, "step": 10**400}},
        {"fast": [10**400]},
        {"fast": ["5"]},
        {"fast": [[5]]},
        {"fast": [True]},
        {"fast": None},
        {"fast": {"from": "1", "to": 5, "step": 1}},
        {"": [1]},
    ],
)
def test_odd_grids_are_422_never_500(api, dataset, grid) -> None:
    response = api.post("/sweeps", {**BODY, "grid": grid})
    assert response.status_code == 422, response.data


def test_a_browser_opening_the_sweeps_url_gets_its_page(api, dataset, client) -> None:
    sweep_id = create(api)["sweep_id"]
    navigation = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    opened = client.get(f"/sweeps/{sweep_id}", headers={"Accept": navigation})
    assert opened.status_code == 302 and opened["Location"] == f"/runs/sweeps/{sweep_id}"
    for accept in ("*/*", "application/json", None):
        headers = {"Accept": accept} if accept else {}
        answer = client.get(f"/sweeps/{sweep_id}", headers=headers)
        assert answer.status_code == 200 and answer.json()["sweep_id"] == sweep_id
