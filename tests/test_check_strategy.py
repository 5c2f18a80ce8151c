"""manage.py check_strategy: a rule that reads the next bar is caught; the built-ins pass."""

import numpy as np
import pytest
from django.core.management import call_command

from backtests.engine import strategies
from backtests.engine.api import strategy


@pytest.fixture(autouse=True)
def registry():
    before = dict(strategies.REGISTRY)
    yield
    strategies.REGISTRY.clear()
    strategies.REGISTRY.update(before)


def test_a_rule_that_reads_the_next_close_is_caught(capsys) -> None:
    @strategy()
    def peeks_ahead(bars):
        """Long when the next close is higher: knows the future."""
        target = np.zeros(len(bars))
        target[:-1] = bars.close[1:] > bars.close[:-1]
        return target

    with pytest.raises(SystemExit) as stopped:
        call_command("check_strategy", "peeks_ahead")
    assert stopped.value.code == 1
    out, err = capsys.readouterr()
    assert "peeks_ahead looks ahead" in err
    assert "with all the bars, 0 with only the first" in out


@pytest.mark.parametrize(
    "strategy_id", ["sma_crossover", "breakout", "trailing_stop", "sma_long_short"]
)
def test_the_built_ins_do_not_look_ahead(strategy_id: str, capsys, db) -> None:
    call_command("check_strategy", strategy_id)
    assert (
        f"{strategy_id}: no look-ahead found over 8,970 bars (synthetic)" in capsys.readouterr().out
    )


def test_a_dataset_and_params_can_be_given(capsys, db, tmp_path) -> None:
    from tests import bar_shapes

    call_command(
        "import_bars", "D", str(bar_shapes.daily_nyse(tmp_path / "d.csv")), "--symbol", "D"
    )
    call_command("check_strategy", "momentum", "--dataset", "D", "--params", '{"lookback": 5}')
    assert "momentum: no look-ahead found over 757 bars (D)" in capsys.readouterr().out
