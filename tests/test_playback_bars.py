"""Playback of users' bars: paced by the dataset's interval (a run POSTed without a speed
plays in about a minute), and always on the bars the run was computed on."""

import json
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from backtests.catalog.bars_import import store_bars
from backtests.engine import synthetic
from backtests.jobs.execute import execute
from backtests.models import Dataset, Run
from backtests.playback import frames
from backtests.playback.run_data import CACHE
from tests.catalog_factories import CREATE_BODY
from tests.conftest import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    settings.WS_HEARTBEAT_INTERVAL = 60
    CACHE.clear()
    yield
    CACHE.clear()
    connections.close_all()


def posted_run(api, dataset_id: str, **fields) -> Run:
    """A run POSTed without a speed, computed now."""
    body = {k: v for k, v in CREATE_BODY.items() if k != "speed"}
    body.update(dataset_id=dataset_id, slippage_fees={"k_spread": 0.02, "fees_bps": 1}, **fields)
    run_id = api.post("/backtests", body).data["run_id"]
    assert execute(run_id, "test") == "DONE"
    return Run.objects.select_related("dataset").get(pk=run_id)


@pytest.mark.parametrize(
    ("make", "start", "end", "interval"),
    [
        (synthetic.generate_daily, date(2014, 1, 1), date(2023, 12, 31), "1d"),
        (synthetic.generate, date(2023, 1, 1), date(2023, 12, 31), "1m"),
    ],
)
async def test_a_run_without_a_speed_plays_in_about_a_minute(api, make, start, end, interval):
    from asgiref.sync import sync_to_async

    series = make("SPY", start, end, 100.0)
    await sync_to_async(store_bars)("SPY-x", series, "SPY")
    run = await sync_to_async(posted_run)(api, "SPY-x")
    assert run.dataset.interval == interval
    data = await CACHE.get(run.run_id)
    seconds = data.bars / frames.bars_per_tick(run.speed, data.bar_seconds) / frames.FPS
    assert 59 < seconds < 61


async def test_the_viewers_speed_presets_follow_the_interval(api) -> None:
    from asgiref.sync import sync_to_async

    series = synthetic.generate_daily("SPY", date(2014, 1, 1), date(2023, 12, 31))
    await sync_to_async(store_bars)("SPY-d", series, "SPY")
    run = await sync_to_async(posted_run)(api, "SPY-d", speed=60)  # one a day every 24 min
    page = (await sync_to_async(api.client.get)(f"/backtests/{run.run_id}/play")).content.decode()
    minute = round(len(series) * 86_400 / 60)
    assert f'<option value="{minute}">the run in about a minute</option>' in page
    assert '<option value="60" selected>the run&#x27;s own speed</option>' in page


def replace_behind_the_catalogs_back(path: Path) -> None:
    """Change a bars file's bytes in place (as a restore from the wrong backup would)."""
    path.write_bytes(path.read_bytes()[:-1] + b"\0")


@pytest.fixture
def done_run(api):
    series = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 3))
    store_bars("AAPL-1m", series, "AAPL")
    return posted_run(api, "AAPL-1m", params={"fast": 5, "slow": 20})


async def first_frame_or_error(run_id: str) -> dict:
    ws = communicator(f"/backtests/{run_id}/ws")
    assert (await ws.connect())[0]
    await ws.send_to(text_data='{"t":"ctrl","cmd":"play"}')
    await ws.receive_from(timeout=5)  # the echo
    message = json.loads(await ws.receive_from(timeout=5))
    await ws.disconnect()
    return message


async def test_a_run_plays_its_own_bars_after_its_dataset_is_pointed_elsewhere(done_run) -> None:
    from asgiref.sync import sync_to_async

    other = synthetic.generate("MSFT", date(2023, 3, 1), date(2023, 3, 10), 300.0)
    elsewhere = (await sync_to_async(store_bars)("MSFT-1m", other, "MSFT")).dataset
    # An admin edit of the dataset's row: its file is now another dataset's.
    await Dataset.objects.filter(pk="AAPL-1m").aupdate(bars_path=elsewhere.bars_path)
    frame = await first_frame_or_error(done_run.run_id)
    assert frame["t"] == "frame"
    assert frame["ohlc"]["o"] < 200  # AAPL's prices (about 100), not MSFT's (about 300)


async def test_bars_that_are_not_the_runs_are_refused_on_the_socket(done_run) -> None:
    replace_behind_the_catalogs_back(Path(settings.DATA_DIR) / done_run.dataset.bars_path)
    message = await first_frame_or_error(done_run.run_id)
    assert message["t"] == "err" and message["code"] == "BARS_MISMATCH"
    assert "is not the bars file recorded" in message["msg"]


def test_bars_that_are_not_the_runs_are_refused_by_the_stream_and_the_page(api, done_run):
    replace_behind_the_catalogs_back(Path(settings.DATA_DIR) / done_run.dataset.bars_path)
    response = api.get(f"/backtests/{done_run.run_id}/stream", {"from": "2140"})
    assert response.status_code == 409 and response.data["error"]["code"] == "BARS_MISMATCH"
    page = api.client.get(f"/backtests/{done_run.run_id}/play")
    assert page.status_code == 409 and b"is not the bars file recorded" in page.content


def test_a_legacy_run_on_bars_of_another_length_is_refused(api, done_run) -> None:
    """A run recorded before runs kept their bars' sha256, whose dataset file changed."""
    Run.objects.filter(pk=done_run.pk).update(bars_sha256="")
    longer = synthetic.generate("AAPL", date(2023, 3, 1), date(2023, 3, 10))
    path = Path(settings.DATA_DIR) / done_run.dataset.bars_path
    from backtests.engine import bars

    bars.write(longer, path)
    response = api.get(f"/backtests/{done_run.run_id}/stream", {"from": "2140"})
    assert response.status_code == 409
    assert (
        "was computed on 1,170 bars; its dataset now has 3,120" in response.data["error"]["message"]
    )


async def test_a_refused_reimport_leaves_the_runs_playback_as_it_was(done_run) -> None:
    from asgiref.sync import sync_to_async

    from backtests.catalog.bars_import import DatasetInUse

    before = await first_frame_or_error(done_run.run_id)
    CACHE.clear()  # as after a restart: the run is read from disk again
    other = synthetic.generate("EURUSD", date(2023, 3, 1), date(2023, 3, 10), 1.1)
    with pytest.raises(DatasetInUse):
        await sync_to_async(store_bars)("AAPL-1m", other, "EURUSD")
    assert await first_frame_or_error(done_run.run_id) == before


def lose_artifacts(run: Run, how: str) -> None:
    """A DONE run's files made unplayable: deleted, damaged, or never written."""
    artifacts = Path(settings.ARTIFACTS_DIR)
    if how == "deleted":
        (artifacts / run.equity_path).unlink()
        (artifacts / run.fills_path).unlink()
    elif how == "damaged":
        (artifacts / run.equity_path).write_bytes(b"not parquet")
        (artifacts / run.fills_path).write_bytes(b"PAR1" + b"\0" * 64 + b"PAR1")
    else:  # an admin set a QUEUED run to DONE: no artifacts recorded at all
        Run.objects.filter(pk=run.pk).update(equity_path="", fills_path="", metrics_path="")


HOW = ["deleted", "damaged", "never written"]


@pytest.mark.parametrize("how", HOW)
def test_a_run_without_readable_artifacts_is_409_on_every_route(api, done_run, how) -> None:
    lose_artifacts(done_run, how)
    for path in ("stream", "trades", "equity"):
        response = api.get(f"/backtests/{done_run.run_id}/{path}")
        assert response.status_code == 409, (path, response.content)
        error = response.data["error"]
        assert error["code"] == "ARTIFACTS_MISSING"
        assert error["message"].startswith(f"run {done_run.run_id} is DONE but its ")
        assert str(settings.ARTIFACTS_DIR) not in error["message"]
    page = api.client.get(f"/backtests/{done_run.run_id}/play")
    assert page.status_code == 409 and b"cannot be read (missing or damaged)" in page.content


@pytest.mark.parametrize("how", HOW)
async def test_a_run_without_readable_artifacts_is_an_err_on_the_socket(done_run, how) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(lose_artifacts)(done_run, how)
    message = await first_frame_or_error(done_run.run_id)
    assert message["t"] == "err" and message["code"] == "ARTIFACTS_MISSING"
    assert "compute it again" in message["msg"]
