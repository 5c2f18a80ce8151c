"""Users' strategy modules: named in BACKTEST_STRATEGY_MODULES or installed as entry
points; a bad one stops the server and the worker at start-up; versions in runs."""

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backtests.engine import loading, strategies
from backtests.jobs.execute import execute
from backtests.models import Run
from tests.catalog_factories import CREATE_BODY, make_dataset
from tests.live_server import ROOT, service_env

MODULE = '''
import numpy as np
from backtests.engine.api import Param, strategy

@strategy(params={"lookback": Param(int, 3, 1, 100, "bars back")})
def NAME(bars, lookback):
    """Short while the close is below the close `lookback` bars earlier."""
    target = np.zeros(len(bars))
    target[lookback:] = -(bars.close[lookback:] < bars.close[:-lookback])
    return target
'''


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """A folder on sys.path for the test's modules; the registry and modules restored."""
    before = dict(strategies.REGISTRY)
    modules = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    strategies.REGISTRY.clear()
    strategies.REGISTRY.update(before)
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def test_a_module_named_in_the_setting_is_loaded(isolated, api) -> None:
    (isolated / "my_strats.py").write_text(MODULE.replace("NAME", "short_dips"))
    assert loading.load(["my_strats"]) == ["my_strats"]
    listed = {s["strategy_id"]: s for s in api.get("/strategies").data["items"]}
    assert listed["short_dips"]["module"] == "my_strats"
    assert len(listed["short_dips"]["version"]) == 16
    assert listed["short_dips"]["rule"].startswith("Short while the close is below")


def test_an_installed_packages_entry_point_is_loaded(isolated) -> None:
    package = isolated / "acme_strategies"
    package.mkdir()
    (package / "__init__.py").write_text(MODULE.replace("NAME", "acme_short"))
    info = isolated / "acme_strategies-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-strategies\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{loading.ENTRY_POINT_GROUP}]\nacme = acme_strategies\n"
    )
    assert loading.load([]) == ["acme_strategies"]
    assert strategies.get("acme_short").module == "acme_strategies"


def start(tmp_path: Path, command: str, modules: str) -> subprocess.CompletedProcess:
    """A management command in a fresh process, with the test's folder on its path."""
    env = service_env(tmp_path, BACKTEST_STRATEGY_MODULES=modules, PYTHONPATH=str(tmp_path))
    return subprocess.run(
        [sys.executable, "manage.py", command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, "strategy module bad_strats: cannot be imported: No module named 'bad_strats'"),
        ("raise RuntimeError('no licence key')", "bad_strats: RuntimeError: no licence key"),
        (MODULE.replace("NAME", "momentum"), "'momentum' is defined twice"),
        (
            MODULE.replace("NAME", "x").replace("Param(int, 3, 1, 100", "Param(int, 300, 1, 100"),
            "parameter 'lookback': the default 300 is not within [1, 100]",
        ),
        (
            MODULE.replace("NAME", "x").replace("def x(bars, lookback)", "def x(bars, window)"),
            "takes ['window'] after the bars, but its schema declares ['lookback']",
        ),
    ],
)
def test_a_bad_module_stops_the_process_at_start(tmp_path, source, expected) -> None:
    if source is not None:
        (tmp_path / "bad_strats.py").write_text(textwrap.dedent(source))
    for command in ("check", "run_worker"):
        result = start(tmp_path, command, "bad_strats")
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr[-1500:]
        assert "BACKTEST_STRATEGY_MODULES" in result.stderr


def test_a_new_version_of_a_strategy_is_a_new_run(api, monkeypatch) -> None:
    make_dataset()
    first = api.post("/backtests", CREATE_BODY)
    assert Run.objects.get(pk=first.data["run_id"]).strategy_version == (
        strategies.get("sma_crossover").version
    )
    edited = dataclasses.replace(strategies.get("sma_crossover"), version="0123456789abcdef")
    monkeypatch.setitem(strategies.REGISTRY, "sma_crossover", edited)
    again = api.post("/backtests", CREATE_BODY)
    assert again.status_code == 202 and again.data["run_id"] != first.data["run_id"]
    detail = api.get(f"/backtests/{again.data['run_id']}").data
    assert detail["strategy_version"] == "0123456789abcdef"


def test_a_strategy_changed_after_queueing_fails_the_run(api, monkeypatch) -> None:
    make_dataset(bars_path="none.parquet")
    run_id = api.post("/backtests", CREATE_BODY).data["run_id"]
    edited = dataclasses.replace(strategies.get("sma_crossover"), version="0123456789abcdef")
    monkeypatch.setitem(strategies.REGISTRY, "sma_crossover", edited)
    assert execute(run_id, "test") == "ERROR"
    assert "changed since the run was queued" in Run.objects.get(pk=run_id).error
