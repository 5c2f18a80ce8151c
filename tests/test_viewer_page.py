"""The viewer page's server side (#19): the run's header before Play, the instrument's
price precision, the time zones offered, and a run that cannot play saying why."""

import numpy as np
import pytest

from backtests.playback.page import price_places
from tests.catalog_factories import make_dataset, make_run


@pytest.mark.parametrize(
    ("closes", "places"),
    [
        ([101.25, 101.5, 102.0], 2),  # cents
        ([1.09123, 1.09127, 1.0913], 5),  # EURUSD pips
        ([65012.5, 65013.0], 2),  # at least two, as prices are read
        ([0.00012345, 0.00012346], 8),  # satoshis
        ([100 / 3, 101 / 3], 2),  # on no tick: two
    ],
)
def test_the_price_precision_is_the_instruments(closes, places) -> None:
    assert price_places(np.array(closes)) == places


@pytest.mark.django_db(transaction=True)
def test_a_waiting_runs_viewer_shows_its_header_and_disables_the_controls(client) -> None:
    dataset = make_dataset("EURUSD-1h", symbol="EURUSD", interval="1h", tz="Europe/London")
    run = make_run(dataset, status="QUEUED", params={"fast": 3, "slow": 9})
    html = client.get(f"/backtests/{run.run_id}/play").content.decode()
    assert "EURUSD · sma_crossover" in html and "fast=3, slow=9" in html
    assert 'id="run-facts"' in html and "1h bars" in html
    assert '<option value="Europe/London">' in html  # the dataset's zone, beside UTC
    assert '<button id="play" type="button" disabled>' in html
    assert "it plays when it is DONE" in html


@pytest.mark.django_db(transaction=True)
def test_an_error_runs_viewer_says_why(client) -> None:
    run = make_run(make_dataset(), status="ERROR", error="the strategy returned NaN at bar 7")
    html = client.get(f"/backtests/{run.run_id}/play").content.decode()
    assert "the strategy returned NaN at bar 7" in html and "nothing to play" in html
    assert '<input id="scrubber"' in html and "disabled>" in html


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_runs_viewer_says_so_and_disables_the_controls(client) -> None:
    run = make_run(make_dataset(), status="CANCELLED")
    html = client.get(f"/backtests/{run.run_id}/play").content.decode()
    assert "The run is CANCELLED: it has nothing to play." in html
    assert '<button id="play" type="button" disabled>' in html
    assert "it plays when it is DONE" not in html
