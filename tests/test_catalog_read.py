"""GET /backtests (list, filter, paginate) and GET /backtests/<id>."""

from datetime import date

import pytest

from backtests.models import Run
from tests.catalog_factories import add_metrics, make_dataset, make_run


@pytest.fixture
def catalog(db) -> dict:
    """Two symbols, three strategies, runs in several statuses, some with metrics."""
    aapl = make_dataset()
    h1 = make_dataset("AAPL-2023H1-1m", from_date=date(2023, 1, 1), to_date=date(2023, 6, 30))
    msft = make_dataset("MSFT-2023-1m", symbol="MSFT")
    runs = [
        make_run(aapl, status=Run.Status.DONE),
        make_run(aapl, strategy_id="momentum"),
        make_run(h1, status=Run.Status.RUNNING),
        make_run(msft, strategy_id="mean_reversion", status=Run.Status.DONE),
        make_run(msft, status=Run.Status.ERROR),
    ]
    add_metrics(runs[0], total_return=0.25, sharpe=1.5)
    add_metrics(runs[3], total_return=-0.05)
    return {"runs": runs, "aapl": aapl}


def ids(response) -> list[str]:
    return [item["run_id"] for item in response.data["items"]]


def test_list_is_newest_first_with_page_info(api, catalog) -> None:
    response = api.get("/backtests")
    assert response.status_code == 200
    assert ids(response) == [r.run_id for r in reversed(catalog["runs"])]
    assert (response.data["total"], response.data["limit"], response.data["offset"]) == (5, 50, 0)


def test_list_item_shape(api, catalog) -> None:
    first = catalog["runs"][0]
    item = next(i for i in api.get("/backtests").data["items"] if i["run_id"] == first.run_id)
    assert item == {
        "run_id": first.run_id,
        "status": "DONE",
        "strategy_id": "sma_crossover",
        "params": first.params,
        "dataset": {
            "dataset_id": "AAPL-2023-1m",
            "symbol": "AAPL",
            "interval": "1m",
            "from": "2023-01-01",
            "to": "2023-12-31",
            "synthetic": False,
        },
        "seed": first.seed,
        "speed": 60,
        "created_at": first.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_ms": None,
        "metrics": {"total_return": 0.25, "sharpe": 1.5, "max_drawdown": -0.12},
    }


def test_oldest_first_on_request(api, catalog) -> None:
    response = api.get("/backtests", {"order": "created_at"})
    assert ids(response) == [r.run_id for r in catalog["runs"]]


def test_equal_timestamps_still_page_in_a_stable_order(api, db) -> None:
    dataset = make_dataset()
    first = make_run(dataset)
    runs = [first, *(make_run(dataset, created_at=first.created_at) for _ in range(4))]
    pages = [ids(api.get("/backtests", {"limit": 2, "offset": o})) for o in (0, 2, 4)]
    seen = [run_id for page in pages for run_id in page]
    assert seen == sorted((r.run_id for r in runs), reverse=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"symbol": "AAPL"}, [0, 1, 2]),
        ({"symbol": "msft"}, [3, 4]),
        ({"strategy_id": "momentum"}, [1]),
        ({"status": "DONE"}, [0, 3]),
        ({"to": "2023-06-30"}, [2]),
        ({"from": "2023-01-01", "to": "2023-12-31"}, [0, 1, 2, 3, 4]),
        ({"from": "2023-01-02"}, []),
        ({"symbol": "AAPL", "status": "DONE", "strategy_id": "sma_crossover"}, [0]),
        ({"symbol": "TSLA"}, []),
    ],
)
def test_filters(api, catalog, query: dict, expected: list[int]) -> None:
    response = api.get("/backtests", query)
    want = [catalog["runs"][i].run_id for i in reversed(expected)]
    assert ids(response) == want
    assert response.data["total"] == len(want)


def test_pagination(api, catalog) -> None:
    newest_first = [r.run_id for r in reversed(catalog["runs"])]
    response = api.get("/backtests", {"limit": 2, "offset": 1})
    assert ids(response) == newest_first[1:3]
    assert (response.data["total"], response.data["limit"], response.data["offset"]) == (5, 2, 1)
    assert ids(api.get("/backtests", {"offset": 10})) == []
    assert api.get("/backtests", {"limit": 500}).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"order": "status"}, "order"),
        ({"status": "done"}, "status"),
        ({"from": "2023-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"symbol": "AA PL"}, "symbol"),
        ({"strategy_id": "a b"}, "strategy_id"),
        ({"colour": "red"}, "colour"),
        ({"limit": ["1", "2"]}, "limit"),
    ],
)
def test_bad_query_is_422(api, catalog, query: dict, field: str) -> None:
    response = api.get("/backtests", query)
    assert response.status_code == 422
    assert response.data["error"]["code"] == "VALIDATION"
    assert field in response.data["error"]["details"]


@pytest.mark.parametrize("query", [{}, {"symbol": "AAPL", "from": "2023-01-01", "status": "DONE"}])
def test_list_issues_three_queries_whatever_the_page_size(
    api, catalog, django_assert_num_queries, query: dict
) -> None:
    for _ in range(30):
        add_metrics(make_run(catalog["aapl"], status=Run.Status.DONE))
    with django_assert_num_queries(3):  # the count, the page with metrics, its datasets
        response = api.get("/backtests", {**query, "limit": 500})
    assert len(response.data["items"]) >= 31


def test_get_run_detail(api, catalog) -> None:
    run = catalog["runs"][0]
    run.metrics_path = "artifacts/x/metrics.json"
    run.code_hash = "abc123"
    run.duration_ms = 1234
    run.save()
    response = api.get(f"/backtests/{run.run_id}")
    assert response.status_code == 200
    data = response.data
    assert data["run_id"] == run.run_id
    assert data["dataset"]["status"] == "READY"
    assert data["dataset"]["products"] == ["TRADES", "TBBO"]
    assert data["params"] == {"fast": 20, "slow": 50}
    assert data["slippage_fees"] == {"k_spread": 0.5, "fees_bps": 1}
    assert data["metrics"]["total_return"] == 0.25
    assert data["metrics"]["hit_rate"] == 0.5
    assert data["duration_ms"] == 1234
    assert data["code_hash"] == "abc123"
    assert data["input_hash"] == run.input_hash
    assert data["artifacts"] == {
        "metrics": "artifacts/x/metrics.json",
        "equity": None,
        "orders": None,
        "fills": None,
        "manifest": None,
    }


def test_get_run_without_metrics(api, catalog) -> None:
    response = api.get(f"/backtests/{catalog['runs'][1].run_id}")
    assert response.data["metrics"] is None


def test_get_issues_one_query(api, catalog, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        api.get(f"/backtests/{catalog['runs'][0].run_id}")


@pytest.mark.parametrize("run_id", ["01HNOSUCHRUN0000000000000", "42", "a" * 64])
def test_unknown_run_is_404_run_not_found(api, catalog, run_id: str) -> None:
    response = api.get(f"/backtests/{run_id}")
    assert response.status_code == 404
    assert response.data["error"]["code"] == "RUN_NOT_FOUND"


@pytest.mark.parametrize(
    "path", ["/backtests/", "/backtests/a/b", "/backtests/" + "a" * 65, "/backtests/a.b"]
)
def test_other_api_paths_are_json_404(api, db, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.data["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/backtests"),
        ("PUT", "/backtests"),
        ("POST", "/backtests/x"),
        ("PATCH", "/backtests/x"),
    ],
)
def test_wrong_method_is_json_405(api, db, method: str, path: str) -> None:
    response = api.call(method, path)
    assert response.status_code == 405
    assert response.data["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in response["Allow"]


def test_unhandled_error_is_json_500_that_leaks_nothing(api, db, monkeypatch, caplog) -> None:
    from backtests.catalog import queries as catalog_module

    async def explode(run_id):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(catalog_module, "get_run", explode)
    response = api.get("/backtests/abc")
    assert response.status_code == 500
    assert response.data == {
        "error": {"code": "INTERNAL", "message": "internal server error", "details": {}}
    }
    assert "secret" not in response.content.decode()
    assert any(r.exc_info for r in caplog.records if r.name == "backtests.catalog.rest")


def test_handler500_answers_json_on_api_paths(rf) -> None:
    import json

    from backtests.catalog.views import server_error

    response = server_error(rf.get("/backtests/x"))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "INTERNAL"
    assert server_error(rf.get("/admin/")).status_code == 500
