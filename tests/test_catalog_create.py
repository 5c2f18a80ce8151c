"""POST /backtests: create, resolve the dataset, idempotency, validation."""

import pytest

from backtests.models import Dataset, Run
from tests.catalog_factories import CREATE_BODY, make_dataset
from tests.openapi import assert_request_matches

BODY = CREATE_BODY


@pytest.fixture
def aapl(db) -> Dataset:
    return make_dataset()


def test_example_body_is_valid_by_the_document() -> None:
    assert_request_matches(BODY)


def test_new_run_is_queued_with_202(api, aapl) -> None:
    response = api.post("/backtests", BODY)
    assert response.status_code == 202
    assert response.data["status"] == "QUEUED"
    run = Run.objects.get(pk=response.data["run_id"])
    assert run.status == Run.Status.QUEUED
    assert run.dataset == aapl
    assert (run.strategy_id, run.params, run.seed, run.speed) == (
        "sma_crossover",
        {"fast": 20, "slow": 50},
        42,
        60,
    )
    assert run.slippage_fees == {"k_spread": 0.5, "fees_bps": 1}
    assert len(run.input_hash) == 64
    assert run.idempotency_key is None


def test_run_ids_are_ulids_that_sort_by_creation(api, aapl) -> None:
    first = api.post("/backtests", BODY).data["run_id"]
    second = api.post("/backtests", {**BODY, "seed": 43}).data["run_id"]
    assert len(first) == len(second) == 26
    assert first < second


def test_speed_defaults_to_60_on_a_dataset_of_unknown_length(api, aapl) -> None:
    body = {k: v for k, v in BODY.items() if k != "speed"}
    response = api.post("/backtests", body)
    assert Run.objects.get(pk=response.data["run_id"]).speed == 60
    # The default is part of the inputs: the same body with speed 60 is the same run.
    assert api.post("/backtests", BODY).data == {
        "run_id": response.data["run_id"],
        "status": "EXISTS",
    }


def test_same_body_without_key_finds_the_earlier_run(api, aapl) -> None:
    first = api.post("/backtests", BODY)
    again = api.post("/backtests", BODY)
    assert again.status_code == 200
    assert again.data == {"run_id": first.data["run_id"], "status": "EXISTS"}
    assert Run.objects.count() == 1


def test_canonical_body_ignores_key_order_and_number_form(api, aapl) -> None:
    first = api.post("/backtests", BODY).data["run_id"]
    reordered = (
        '{"speed":60.0,"slippage_fees":{"fees_bps":1.0,"k_spread":0.50},"seed":42,'
        '"params":{"slow":50,"fast":2e1},"strategy_id":"sma_crossover","dataset_id":"AAPL-2023-1m"}'
    )
    response = api.post("/backtests", reordered, raw=True)
    assert response.status_code == 422  # speed must be an integer: 60.0 is refused
    reordered = reordered.replace('"speed":60.0', '"speed":60')
    response = api.post("/backtests", reordered, raw=True)
    assert response.data == {"run_id": first, "status": "EXISTS"}


def test_any_difference_in_inputs_is_a_new_run(api, aapl) -> None:
    first = api.post("/backtests", BODY).data["run_id"]
    for change in (
        {"seed": 43},
        {"params": {"fast": 20, "slow": 51}},
        {"strategy_id": "momentum", "params": {"lookback": 20}},
        {"slippage_fees": {"k_spread": 0.5, "fees_bps": 2}},
        {"speed": 120},
    ):
        response = api.post("/backtests", {**BODY, **change})
        assert response.status_code == 202, change
        assert response.data["run_id"] != first


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Idempotency-Key"])
def test_same_key_same_body_is_exists(api, aapl, header: str) -> None:
    first = api.post("/backtests", BODY, headers={header: "req-1"})
    assert first.status_code == 202
    assert Run.objects.get(pk=first.data["run_id"]).idempotency_key == "req-1"
    again = api.post("/backtests", BODY, headers={header: "req-1"})
    assert again.status_code == 200
    assert again.data == {"run_id": first.data["run_id"], "status": "EXISTS"}


def test_key_and_its_alias_are_the_same_key(api, aapl) -> None:
    first = api.post("/backtests", BODY, headers={"Idempotency-Key": "req-1"})
    again = api.post("/backtests", BODY, headers={"X-Idempotency-Key": "req-1"})
    assert again.data == {"run_id": first.data["run_id"], "status": "EXISTS"}


def test_same_key_different_body_is_409(api, aapl) -> None:
    first = api.post("/backtests", BODY, headers={"Idempotency-Key": "req-1"})
    response = api.post("/backtests", {**BODY, "seed": 7}, headers={"Idempotency-Key": "req-1"})
    assert response.status_code == 409
    assert response.data["error"]["code"] == "IDP_CONFLICT"
    assert response.data["error"]["details"] == {"run_id": first.data["run_id"]}
    assert Run.objects.count() == 1


def test_new_key_for_an_existing_body_finds_the_earlier_run(api, aapl) -> None:
    first = api.post("/backtests", BODY, headers={"Idempotency-Key": "a"})
    response = api.post("/backtests", BODY, headers={"Idempotency-Key": "b"})
    assert response.data == {"run_id": first.data["run_id"], "status": "EXISTS"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Idempotency-Key": "x" * 256},
        {"Idempotency-Key": "has space"},
        {"Idempotency-Key": ""},
        {"Idempotency-Key": "a", "X-Idempotency-Key": "b"},
    ],
)
def test_bad_idempotency_key_is_422(api, aapl, headers: dict) -> None:
    response = api.post("/backtests", BODY, headers=headers)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.data["error"]["details"]
    assert Run.objects.count() == 0


def test_symbol_and_range_resolve_to_the_covering_dataset(api, aapl) -> None:
    make_dataset("AAPL-2023H1-1m", from_date="2023-01-01", to_date="2023-06-30")
    make_dataset("MSFT-2023-1m", symbol="MSFT")
    body = {k: v for k, v in BODY.items() if k != "dataset_id"}
    response = api.post(
        "/backtests", {**body, "symbol": "aapl", "from": "2023-02-01", "to": "2023-03-01"}
    )
    assert response.status_code == 202
    # The tightest READY dataset covering the range wins.
    assert Run.objects.get(pk=response.data["run_id"]).dataset_id == "AAPL-2023H1-1m"
    response = api.post(
        "/backtests", {**body, "symbol": "AAPL", "from": "2023-06-01", "to": "2023-07-01"}
    )
    assert Run.objects.get(pk=response.data["run_id"]).dataset_id == "AAPL-2023-1m"


def test_range_form_and_id_form_of_the_same_run_are_one_run(api, aapl) -> None:
    first = api.post("/backtests", BODY).data["run_id"]
    body = {k: v for k, v in BODY.items() if k != "dataset_id"}
    response = api.post(
        "/backtests", {**body, "symbol": "AAPL", "from": "2023-01-01", "to": "2023-12-31"}
    )
    assert response.data == {"run_id": first, "status": "EXISTS"}


@pytest.mark.parametrize(
    "source",
    [
        {"dataset_id": "NOPE-1"},
        {"symbol": "AAPL", "from": "2022-12-01", "to": "2023-03-01"},
        {"symbol": "TSLA", "from": "2023-02-01", "to": "2023-03-01"},
    ],
)
def test_unknown_dataset_is_404(api, aapl, source: dict) -> None:
    body = {k: v for k, v in BODY.items() if k != "dataset_id"}
    response = api.post("/backtests", {**body, **source})
    assert response.status_code == 404
    assert response.data["error"]["code"] == "DATASET_NOT_FOUND"


def test_dataset_not_ready_is_409_by_id_and_not_found_by_range(api, db) -> None:
    make_dataset(status=Dataset.Status.BUILDING)
    response = api.post("/backtests", BODY)
    assert response.status_code == 409
    assert response.data["error"]["code"] == "CONFLICT"
    body = {k: v for k, v in BODY.items() if k != "dataset_id"}
    response = api.post(
        "/backtests", {**body, "symbol": "AAPL", "from": "2023-02-01", "to": "2023-03-01"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", "body"),
        ("", "body"),
        ("[1,2]", "body"),
        ('"text"', "body"),
        ("{" * 5000 + "}" * 5000, "body"),
        ('{"seed":' + "9" * 5000 + "}", "body"),
    ],
)
def test_body_that_is_not_a_json_object_is_422(api, aapl, raw: str, field: str) -> None:
    response = api.post("/backtests", raw, raw=True)
    assert response.status_code == 422
    assert response.data["error"]["code"] == "VALIDATION"
    assert field in response.data["error"]["details"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"strategy_id": None}, "strategy_id"),
        ({"strategy_id": ""}, "strategy_id"),
        ({"strategy_id": 5}, "strategy_id"),
        ({"params": [1]}, "params"),
        ({"params": "fast=20"}, "params"),
        ({"params": None}, "params"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": "42"}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"slippage_fees": None}, "slippage_fees"),
        ({"slippage_fees": {"k_spread": 0.5}}, "slippage_fees.fees_bps"),
        ({"slippage_fees": {"k_spread": True, "fees_bps": 1}}, "slippage_fees.k_spread"),
        ({"slippage_fees": {"k_spread": -1, "fees_bps": 1}}, "slippage_fees.k_spread"),
        ({"slippage_fees": {"k_spread": 1, "fees_bps": 1, "x": 1}}, "slippage_fees.x"),
        ({"slippage_fees": {"k_spread": 0.1, "fees_bps": 10_000}}, "slippage_fees.fees_bps"),
        ({"slippage_fees": {"k_spread": 0.1, "fees_bps": 20_000}}, "slippage_fees.fees_bps"),
        ({"slippage_fees": {"k_spread": 1e300, "fees_bps": 1}}, "slippage_fees.k_spread"),
        ({"slippage_fees": {"k_spread": 10.5, "fees_bps": 1}}, "slippage_fees.k_spread"),
        ({"speed": 0}, "speed"),
        ({"speed": -60}, "speed"),
        ({"speed": 1.5}, "speed"),
        ({"speed": False}, "speed"),
        ({"speed": None}, "speed"),
        ({"dataset_id": 7}, "dataset_id"),
        ({"dataset_id": "has space"}, "dataset_id"),
        ({"symbol": "AAPL"}, "dataset_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_field_is_422_naming_the_field(api, aapl, change: dict, field: str) -> None:
    response = api.post("/backtests", {**BODY, **change})
    assert response.status_code == 422
    assert response.data["error"]["code"] == "VALIDATION"
    assert field in response.data["error"]["details"], response.data
    assert Run.objects.count() == 0


@pytest.mark.parametrize("field", ["strategy_id", "params", "seed", "slippage_fees"])
def test_missing_required_field_is_422(api, aapl, field: str) -> None:
    response = api.post("/backtests", {k: v for k, v in BODY.items() if k != field})
    assert response.data["error"]["details"][field] == "required"


def test_missing_dataset_is_422(api, aapl) -> None:
    response = api.post("/backtests", {k: v for k, v in BODY.items() if k != "dataset_id"})
    assert "dataset_id" in response.data["error"]["details"]


@pytest.mark.parametrize(
    ("source", "fields"),
    [
        ({"symbol": "AAPL", "from": "2023-01-01"}, {"to"}),
        ({"symbol": "AAPL", "from": "2023-13-01", "to": "2023-02-01"}, {"from"}),
        ({"symbol": "AAPL", "from": "2023-03-01", "to": "2023-02-01"}, {"to"}),
        ({"symbol": "", "from": "01/01/2023", "to": 20230201}, {"symbol", "from", "to"}),
    ],
)
def test_bad_range_is_422(api, aapl, source: dict, fields: set) -> None:
    body = {k: v for k, v in BODY.items() if k != "dataset_id"}
    response = api.post("/backtests", {**body, **source})
    assert response.status_code == 422
    assert set(response.data["error"]["details"]) == fields


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_422_naming_the_field(api, aapl, token: str) -> None:
    raw = (
        '{"dataset_id":"AAPL-2023-1m","strategy_id":"s","seed":1,'
        f'"params":{{"fast":{token},"deep":[1,{{"x":{token}}}]}},'
        f'"slippage_fees":{{"k_spread":{token},"fees_bps":1}}}}'
    )
    response = api.post("/backtests", raw, raw=True)
    assert response.status_code == 422
    assert set(response.data["error"]["details"]) == {
        "params.fast",
        "params.deep[1].x",
        "slippage_fees.k_spread",
    }


def test_every_offending_field_is_named_at_once(api, aapl) -> None:
    response = api.post("/backtests", {"dataset_id": "AAPL-2023-1m", "seed": -1, "speed": 0})
    assert set(response.data["error"]["details"]) == {
        "strategy_id",
        "params",
        "seed",
        "slippage_fees",
        "speed",
    }


def test_oversized_body_is_413(api, aapl, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/backtests", {**BODY, "params": {"pad": "x" * 2000}})
    assert response.status_code == 413
    assert response.data["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_post_needs_no_csrf_token(aapl) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/backtests", BODY, content_type="application/json")
    assert response.status_code == 202
