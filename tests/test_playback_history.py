"""GET /backtests/<id>/bars (#19): a window of a DONE run's bars as candles, with its
orders, equity and position, for a viewer that seeks and keeps the chart."""

from datetime import date

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.db import connections

from backtests.catalog.bars_import import store_bars
from backtests.engine import bars as engine_bars
from backtests.engine import synthetic
from backtests.jobs.execute import execute
from backtests.models import Run
from backtests.playback.run_data import CACHE
from tests.catalog_factories import make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache():
    CACHE.clear()
    yield
    CACHE.clear()
    connections.close_all()


@pytest.fixture
def done_run():
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 6))
    dataset = store_bars("AAPL-1m", series, "AAPL").dataset
    run = make_run(dataset, status="QUEUED", params={"fast": 5, "slow": 20})
    assert execute(run.run_id, "test") == "DONE"
    return Run.objects.select_related("dataset").get(pk=run.pk)


def test_every_bar_of_a_window_as_it_is(api, done_run) -> None:
    window = api.get(f"/backtests/{done_run.run_id}/bars", {"from": 100, "to": 400}).data
    bars = engine_bars.load(settings.DATA_DIR / done_run.dataset.bars_path)
    curve = pq.read_table(settings.ARTIFACTS_DIR / done_run.equity_path)
    assert window["bars_per_candle"] == 1 and window["i"] == list(range(100, 400))
    assert window["open"] == bars.open[100:400].tolist()
    assert window["close"] == bars.close[100:400].tolist()
    assert window["equity"] == curve.column("equity").to_pylist()[100:400]
    assert window["position"] == curve.column("position").to_pylist()[100:400]
    assert all(100 <= order["i"] < 400 for order in window["orders"])


def test_a_long_window_is_grouped_into_at_most_max_candles(api, done_run) -> None:
    window = api.get(f"/backtests/{done_run.run_id}/bars", {"max": 7}).data
    bars = engine_bars.load(settings.DATA_DIR / done_run.dataset.bars_path)
    size = window["bars_per_candle"]
    assert len(window["ts"]) <= 7 and size == -(-len(bars) // 7)
    assert window["high"][0] == bars.high[:size].max()
    assert window["low"][0] == bars.low[:size].min()
    assert window["volume"][0] == pytest.approx(bars.volume[:size].sum())
    assert window["close"][-1] == bars.close[-1] and window["i"][-1] == len(bars) - 1
    fills = pq.read_table(settings.ARTIFACTS_DIR / done_run.fills_path)
    assert len(window["orders"]) == fills.num_rows  # every order of the run
    signed = np.where(np.array(fills.column("side").to_pylist()) == "buy", 1, -1)
    held = float((signed * fills.column("qty").to_numpy()).sum())
    assert window["position"][-1] == pytest.approx(held)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "-1"}, "from"),
        ({"from": "999999"}, "from"),
        ({"from": 5, "to": 5}, "to"),
        ({"max": 0}, "max"),
        ({"max": 10_001}, "max"),
        ({"every": 2}, "every"),
    ],
)
def test_a_bad_window_is_a_422_naming_the_field(api, done_run, query, field) -> None:
    response = api.get(f"/backtests/{done_run.run_id}/bars", query)
    assert response.status_code == 422 and field in response.data["error"]["details"]


def test_a_run_that_is_not_done_has_no_bars_yet(api) -> None:
    from tests.catalog_factories import make_dataset

    queued = make_run(make_dataset(), status="QUEUED")
    response = api.get(f"/backtests/{queued.run_id}/bars")
    assert response.status_code == 409 and response.data["error"]["code"] == "CONFLICT"
    assert api.get("/backtests/01HM65JQM043J5BD14TQ8NBVDX/bars").status_code == 404
