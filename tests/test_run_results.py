"""A run's trades and equity as data: JSON pages and CSV, checked against the artifacts
and against the trades' own accounting."""

import csv
import io
from datetime import date

import pyarrow.parquet as pq
import pytest
from django.conf import settings

from backtests.catalog.bars_import import store_bars
from backtests.engine import synthetic
from backtests.jobs.execute import execute
from backtests.models import Run
from tests.catalog_factories import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def long_short_run():
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 10))
    dataset = store_bars("AAPL-1m", series, "AAPL").dataset
    run = make_run(
        dataset,
        status="QUEUED",
        strategy_id="sma_long_short",
        params={"fast": 5, "slow": 20},
        slippage_fees={"k_spread": 0.02, "fees_bps": 1},
    )
    assert execute(run.run_id, "test") == "DONE"
    return Run.objects.get(pk=run.pk)


def test_trades_page_through_long_and_short_trades(api, long_short_run) -> None:
    run_id = long_short_run.run_id
    first = api.get(f"/backtests/{run_id}/trades", {"limit": 10}).data
    assert first["limit"] == 10 and len(first["items"]) == 10 and first["total"] > 20
    sides = {item["side"] for item in first["items"]}
    assert sides == {"long", "short"}
    everything = api.get(f"/backtests/{run_id}/trades", {"limit": 500}).data["items"]
    closed = [t for t in everything if t["exit_ts"] is not None]
    fills = pq.read_table(settings.ARTIFACTS_DIR / long_short_run.fills_path)
    assert sum(t["fees"] for t in everything) == pytest.approx(sum(fills.column("fee").to_pylist()))
    for trade in closed:
        assert trade["duration_s"] >= 60 and trade["entry_ts"] < trade["exit_ts"]
        assert trade["return"] == pytest.approx(
            trade["pnl"] / (trade["qty"] * trade["entry_price"]), rel=1e-9
        )
    page = api.get(f"/backtests/{run_id}/trades", {"limit": 5, "offset": 10}).data["items"]
    assert page == everything[10:15]


def test_trades_as_csv(client, long_short_run) -> None:
    response = client.get(f"/backtests/{long_short_run.run_id}/trades", {"format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == [
        "side",
        "entry_ts",
        "exit_ts",
        "qty",
        "entry_price",
        "exit_price",
        "pnl",
        "return",
        "fees",
        "duration_s",
    ]
    assert {row["side"] for row in rows} == {"long", "short"}


def test_equity_as_json_and_csv(api, client, long_short_run) -> None:
    run_id = long_short_run.run_id
    curve = api.get(f"/backtests/{run_id}/equity").data
    table = pq.read_table(settings.ARTIFACTS_DIR / long_short_run.equity_path)
    assert curve["bars"] == table.num_rows == len(curve["ts"])
    assert curve["equity"] == table.column("equity").to_pylist()
    assert min(curve["position"]) < 0 < max(curve["position"])
    response = client.get(f"/backtests/{run_id}/equity", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header = ["ts", "equity", "position", "drawdown", "benchmark"]
    assert rows[0] == header and len(rows) == curve["bars"] + 1
    assert float(rows[-1][1]) == pytest.approx(curve["equity"][-1])


def test_the_benchmark_is_buy_and_hold_from_the_first_close(api, long_short_run) -> None:
    from backtests.engine import bars as engine_bars

    curve = api.get(f"/backtests/{long_short_run.run_id}/equity").data
    run = Run.objects.select_related("dataset").get(pk=long_short_run.pk)
    close = engine_bars.load(settings.DATA_DIR / run.dataset.bars_path).close
    assert curve["benchmark"][0] == pytest.approx(100_000.0)
    assert curve["benchmark"][-1] == pytest.approx(100_000.0 * close[-1] / close[0])
    bought_and_held = curve["benchmark"][-1] / 100_000.0 - 1
    assert bought_and_held == pytest.approx(run.metrics.buy_and_hold_return)


def test_results_of_runs_that_are_not_done_or_do_not_exist(api) -> None:
    from tests.catalog_factories import make_dataset

    queued = make_run(make_dataset(), status="QUEUED")
    for kind in ("trades", "equity"):
        response = api.get(f"/backtests/{queued.run_id}/{kind}")
        assert response.status_code == 409 and response.data["error"]["details"] == {
            "status": "QUEUED"
        }
        assert api.get(f"/backtests/01HM65JQM043J5BD14TQ8NBVDX/{kind}").status_code == 404
        assert api.get(f"/backtests/{queued.run_id}/{kind}", {"format": "xml"}).status_code == 422
    assert api.get(f"/backtests/{queued.run_id}/equity", {"limit": "5"}).status_code == 422


def test_an_equity_chart_gets_at_most_max_points_with_each_groups_trough(api, long_short_run):
    full = api.get(f"/backtests/{long_short_run.run_id}/equity").data
    chart = api.get(f"/backtests/{long_short_run.run_id}/equity", {"max": 10}).data
    size = chart["bars_per_point"]
    assert chart["bars"] == full["bars"] and len(chart["ts"]) <= 10 and size > 1
    assert chart["ts"][0] == full["ts"][size - 1] and chart["ts"][-1] == full["ts"][-1]
    assert chart["equity"][0] == full["equity"][size - 1]
    assert chart["drawdown"][0] == min(full["drawdown"][:size])
    assert min(chart["drawdown"]) == min(full["drawdown"])
    for bad in ("0", "10001", "x"):
        response = api.get(f"/backtests/{long_short_run.run_id}/equity", {"max": bad})
        assert response.status_code == 422 and "max" in response.data["error"]["details"]
