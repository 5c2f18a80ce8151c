"""The datasets API: list and get (openapi.yaml), and uploads of CSV and Parquet files
checked like import_bars; an upload through real servers, past the 1 MiB body limit."""

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from backtests.jobs.execute import execute
from backtests.models import Dataset
from tests import bar_shapes
from tests.catalog_factories import make_run
from tests.live_jobs import manage
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.django_db


def upload(api, body: bytes, content_type: str = "text/csv", **query: str):
    """POST /datasets with a raw body; the answer checked against the document."""
    path = "/datasets?" + "&".join(f"{k}={v}" for k, v in query.items())
    response = api.client.post(path, body, content_type=content_type)
    return api.checked("POST", "/datasets", response)


def test_a_csv_upload_creates_a_dataset(api, tmp_path) -> None:
    body = bar_shapes.hourly_fx(tmp_path / "fx.csv").read_bytes()
    response = upload(api, body, dataset_id="EURUSD-1h", symbol="eurusd")
    assert response.status_code == 201
    data = response.data
    assert (data["dataset_id"], data["symbol"], data["interval"], data["tz"]) == (
        "EURUSD-1h",
        "EURUSD",
        "1h",
        "UTC",
    )
    assert data["bars"] == body.count(b"\n") - 1 and data["runs"] == 0
    assert data["first_bar_at"] == "2017-04-02T22:00:00Z"
    assert data["sha256"] == Dataset.objects.get(pk="EURUSD-1h").bars_sha256
    assert data["products"] == ["BARS_1H"] and data["synthetic"] is False


def test_a_parquet_upload_with_a_zone_and_an_interval(api, tmp_path) -> None:
    body = bar_shapes.minute_parquet(tmp_path / "m.parquet").read_bytes()
    response = upload(
        api,
        body,
        "application/vnd.apache.parquet",
        dataset_id="COIN-1m",
        symbol="COIN",
        tz="America/New_York",
        interval="1m",
    )
    assert response.status_code == 201
    assert (response.data["interval"], response.data["tz"]) == ("1m", "America/New_York")
    assert response.data["first_bar_at"] == "2023-03-01T14:30:00Z"


def test_a_bad_file_is_422_with_its_rows_and_nothing_is_stored(api, tmp_path) -> None:
    body = b"Date,Open,High,Low,Close,Volume\n2023-01-03,10,11,9,10,1\n2023-01-04,10,abc,9,10,1\n"
    response = upload(api, body, dataset_id="X", symbol="X")
    assert response.status_code == 422
    error = response.data["error"]
    assert error["code"] == "VALIDATION" and "nothing written" in error["message"]
    assert error["details"]["problems"] == [
        {
            "rule": "not a number",
            "row": 2,
            "column": "high",
            "position": 3,
            "value": "'abc'",
            "message": "row 2, column high (file column 3), value 'abc': not a number",
        }
    ]
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"symbol": "X"}, "dataset_id"),
        ({"dataset_id": "X"}, "symbol"),
        ({"dataset_id": "X", "symbol": "<b>"}, "symbol"),
        ({"dataset_id": "X", "symbol": "X", "tz": "Nowhere/City"}, "tz"),
        ({"dataset_id": "X", "symbol": "X", "interval": "2h"}, "interval"),
        ({"dataset_id": "a b", "symbol": "X"}, "dataset_id"),
        ({"dataset_id": "X", "symbol": "X", "colour": "red"}, "colour"),
    ],
)
def test_bad_query_parameters_are_422_naming_them(api, tmp_path, query, field) -> None:
    body = bar_shapes.weekly(tmp_path / "w.csv").read_bytes()
    response = upload(api, body, **query)
    assert response.status_code == 422
    assert field in response.data["error"]["details"]


def test_another_content_type_is_415(api) -> None:
    response = upload(api, b"{}", "application/json", dataset_id="X", symbol="X")
    assert response.status_code == 415
    assert response.data["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_new_bars_for_a_dataset_with_runs_are_409_and_the_same_bars_200(api, tmp_path) -> None:
    weekly = bar_shapes.weekly(tmp_path / "w.csv").read_bytes()
    assert upload(api, weekly, dataset_id="W", symbol="W").status_code == 201
    run = make_run(Dataset.objects.get(pk="W"), status="QUEUED", params={"fast": 3, "slow": 8})
    assert execute(run.run_id, "test") == "DONE"
    monthly = bar_shapes.monthly(tmp_path / "m.csv").read_bytes()
    refused = upload(api, monthly, dataset_id="W", symbol="W")
    assert refused.status_code == 409
    assert refused.data["error"]["code"] == "CONFLICT"
    assert refused.data["error"]["details"] == {"dataset_id": "W", "runs": 1}
    again = upload(api, weekly, dataset_id="W", symbol="W")
    assert again.status_code == 200 and again.data["runs"] == 1
    assert api.get("/datasets/W").data["interval"] == "1w"


def test_a_dataset_without_runs_is_replaced_200(api, tmp_path) -> None:
    upload(api, bar_shapes.weekly(tmp_path / "w.csv").read_bytes(), dataset_id="W", symbol="W")
    monthly = bar_shapes.monthly(tmp_path / "m.csv").read_bytes()
    replaced = upload(api, monthly, dataset_id="W", symbol="W")
    assert replaced.status_code == 200 and replaced.data["interval"] == "1mo"


def test_list_filters_and_pages(api, tmp_path) -> None:
    upload(api, bar_shapes.weekly(tmp_path / "w.csv").read_bytes(), dataset_id="A", symbol="A")
    upload(api, bar_shapes.monthly(tmp_path / "m.csv").read_bytes(), dataset_id="B", symbol="A")
    upload(api, bar_shapes.weekly(tmp_path / "w.csv").read_bytes(), dataset_id="C", symbol="C")
    everything = api.get("/datasets").data
    assert [d["dataset_id"] for d in everything["items"]] == ["A", "B", "C"]
    assert everything["total"] == 3
    assert api.get("/datasets", {"symbol": "a"}).data["total"] == 2
    weekly = api.get("/datasets", {"interval": "1w"}).data
    assert [d["dataset_id"] for d in weekly["items"]] == ["A", "C"]
    page = api.get("/datasets", {"limit": 1, "offset": 1}).data
    assert [d["dataset_id"] for d in page["items"]] == ["B"] and page["total"] == 3
    for bad in ({"interval": "2h"}, {"limit": "0"}, {"offset": "-1"}, {"x": "1"}):
        assert api.get("/datasets", bad).status_code == 422


def test_get_one_and_unknown_ones(api, tmp_path) -> None:
    upload(api, bar_shapes.weekly(tmp_path / "w.csv").read_bytes(), dataset_id="W", symbol="W")
    assert api.get("/datasets/W").data["bars"] == 120
    assert api.get("/datasets/nope").data["error"]["code"] == "DATASET_NOT_FOUND"
    assert api.get("/datasets/W/extra").status_code == 404
    assert api.call("DELETE", "/datasets/W").status_code == 405


def test_runs_list_their_datasets_interval(api, tmp_path) -> None:
    upload(api, bar_shapes.weekly(tmp_path / "w.csv").read_bytes(), dataset_id="W", symbol="W")
    make_run(Dataset.objects.get(pk="W"), status="QUEUED")
    assert api.get("/backtests").data["items"][0]["dataset"]["interval"] == "1w"


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, tmp_path_factory) -> Iterator[tuple[str, LiveServer]]:
    tmp = tmp_path_factory.mktemp(request.param)
    manage(tmp, "migrate", "--no-input")
    with live_server(request.param, tmp, DATASET_MAX_BYTES="5000000") as live:
        yield request.param, live


def post(server: LiveServer, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "text/csv"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.e2e
def test_a_large_upload_through_real_servers(server, tmp_path: Path) -> None:
    """Several MiB (over HTTP_MAX_BODY_BYTES): accepted; over DATASET_MAX_BYTES: 413."""
    _, live = server
    body = bar_shapes.hourly_fx(tmp_path / "fx.csv", weeks=520).read_bytes()
    assert 2_000_000 < len(body) < 5_000_000
    status, answer = post(live, "/datasets?dataset_id=FX&symbol=EURUSD", body)
    assert status == 201, answer[:500]
    # Answered from the declared length, before any of the body is sent, by both.
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    conn.putrequest("POST", "/datasets?dataset_id=FX2&symbol=EURUSD")
    conn.putheader("Content-Type", "text/csv")
    conn.putheader("Content-Length", str(2 * len(body)))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and b"PAYLOAD_TOO_LARGE" in response.read()
    conn.close()
