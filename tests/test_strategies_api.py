"""GET /strategies, and POST /backtests checking strategy_id and params against the registry."""

import pytest

from backtests.engine import strategies
from backtests.models import Run
from tests.catalog_factories import CREATE_BODY, make_dataset


@pytest.fixture
def aapl(db):
    return make_dataset()


def test_strategies_lists_every_strategy_with_defaults_and_bounds(api) -> None:
    response = api.get("/strategies")
    assert response.status_code == 200
    items = {item["strategy_id"]: item for item in response.data["items"]}
    assert set(items) == {
        "sma_crossover",
        "sma_long_short",
        "buy_and_hold",
        "mean_reversion",
        "momentum",
        "breakout",
        "trailing_stop",
    }
    fast = items["sma_crossover"]["params"]["fast"]
    assert (fast["type"], fast["default"], fast["minimum"]) == ("integer", 20, 1)
    assert items["sma_crossover"]["constraints"] == ["fast must be less than slow"]
    assert items["buy_and_hold"]["params"] == {}
    assert all(item["rule"] for item in items.values())


def test_strategies_refuses_other_methods(api) -> None:
    assert api.call("DELETE", "/strategies").status_code == 405


def test_an_unknown_strategy_is_refused_listing_the_known_ones(api, aapl) -> None:
    response = api.post("/backtests", {**CREATE_BODY, "strategy_id": "nope"})
    assert response.status_code == 422
    assert response.data["error"]["code"] == "VALIDATION"
    message = response.data["error"]["details"]["strategy_id"]
    assert all(name in message for name in strategies.REGISTRY)


@pytest.mark.parametrize(
    ("params", "field", "rule"),
    [
        ({"fast": 0, "slow": 50}, "params.fast", "between 1 and 10000"),
        ({"fast": 20.5, "slow": 50}, "params.fast", "must be an integer"),
        ({"fast": "20", "slow": 50}, "params.fast", "must be an integer"),
        ({"fast": 50, "slow": 20}, "params", "fast must be less than slow"),
        ({"fast": 20, "slow": 50, "extra": 1}, "params.extra", "unknown parameter"),
    ],
)
def test_a_bad_parameter_is_refused_naming_the_field_and_rule(
    api, aapl, params, field: str, rule: str
) -> None:
    response = api.post("/backtests", {**CREATE_BODY, "params": params})
    assert response.status_code == 422
    assert rule in response.data["error"]["details"][field]
    assert not Run.objects.exists()


def test_defaults_fill_in_and_the_same_run_asked_two_ways_is_one(api, aapl) -> None:
    first = api.post("/backtests", {**CREATE_BODY, "params": {}})
    assert first.status_code == 202
    assert Run.objects.get().params == {"fast": 20, "slow": 50}
    again = api.post("/backtests", {**CREATE_BODY, "params": {"fast": 20, "slow": 50}})
    assert again.data == {"run_id": first.data["run_id"], "status": "EXISTS"}
