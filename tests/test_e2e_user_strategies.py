"""A user's strategy module through a real server and a real worker: listed, computed,
traded long and short; one that raises fails its own run, and the worker goes on."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_jobs import api, live_worker, manage, wait_for_status
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.e2e

MODULE = '''
import numpy as np
from backtests.engine.api import Param, strategy
from backtests.engine.indicators import rolling_mean


@strategy(params={"window": Param(int, 30, 2, 1000, "bars in the average")})
def team_fade(bars, window):
    """Half short above SMA(window), half long below: fade the move."""
    return -0.5 * np.nan_to_num(np.sign(bars.close - rolling_mean(bars.close, window)))


@strategy()
def team_broken(bars):
    """Fails: a bug in the user's code."""
    return {}["missing"]
'''
BODY = {
    "dataset_id": "AAPL-2023-1m",
    "params": {},
    "seed": 1,
    "slippage_fees": {"k_spread": 0.02, "fees_bps": 1},
}


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("user-strategies")
    (tmp / "team_strategies.py").write_text(MODULE)
    manage(tmp, "migrate", "--no-input")
    manage(tmp, "load_demo")
    return tmp


def user_env(state: Path) -> dict[str, str]:
    return {"BACKTEST_STRATEGY_MODULES": "team_strategies", "PYTHONPATH": str(state)}


@pytest.fixture(scope="module")
def server(state: Path) -> Iterator[LiveServer]:
    with live_server("uvicorn", state, **user_env(state)) as live:
        yield live


def test_a_users_strategies_are_listed_computed_and_contained(server, state) -> None:
    listed = {s["strategy_id"]: s for s in api(server.http_url, "GET", "/strategies")[1]["items"]}
    assert listed["team_fade"]["module"] == "team_strategies"
    with live_worker(state, **user_env(state)) as worker:
        status, broken = api(
            server.http_url, "POST", "/backtests", {**BODY, "strategy_id": "team_broken"}
        )
        assert status == 202
        status, fade = api(
            server.http_url, "POST", "/backtests", {**BODY, "strategy_id": "team_fade"}
        )
        assert status == 202
        failed = wait_for_status(server.http_url, broken["run_id"], {"ERROR", "DONE"})
        assert failed["status"] == "ERROR"
        assert failed["error"].startswith(
            "strategy team_broken raised KeyError at team_strategies.py:"
        )
        done = wait_for_status(server.http_url, fade["run_id"], {"DONE", "ERROR"})
        assert done["status"] == "DONE", done["error"]
        assert done["strategy_version"] == listed["team_fade"]["version"]
        trades = api(server.http_url, "GET", f"/backtests/{fade['run_id']}/trades?limit=500")[1]
        assert {t["side"] for t in trades["items"]} == {"long", "short"}
        assert worker.poll() is None  # the worker lives on
    assert "Traceback" in worker.log_path.read_text()  # the traceback is the worker's log's
    assert "Traceback" not in failed["error"]
