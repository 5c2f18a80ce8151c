"""/readyz, /metrics, request ids and JSON logs."""

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient

from health import views
from project import log
from tests.conftest import communicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_worker_thread_connections():
    yield
    await sync_to_async(connections.close_all)()


async def test_readyz_ok_names_each_check() -> None:
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "channel_layer": "ok"}


async def test_readyz_503_names_the_failing_database(monkeypatch) -> None:
    def broken() -> None:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(views, "query_database", broken)
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("error: RuntimeError")
    assert body["checks"]["channel_layer"] == "ok"


async def test_readyz_times_out_a_hanging_channel_layer(monkeypatch) -> None:
    import asyncio

    async def hang() -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(views, "check_channel_layer", hang)
    monkeypatch.setattr(views, "CHECK_TIMEOUT", 0.1)
    response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert json.loads(response.content)["checks"]["channel_layer"] == "timeout after 0.1s"


async def test_readyz_really_queries_the_database(django_assert_num_queries) -> None:
    # The query runs in the request's worker thread; count it there.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            views.query_database()
        return len(queries)

    assert await sync_to_async(count)() == 1


async def test_healthz_stays_dependency_free(monkeypatch) -> None:
    monkeypatch.setattr(views, "query_database", lambda: 1 / 0)
    assert (await AsyncClient().get("/healthz")).status_code == 200


def metric(text: str, name: str) -> float:
    """A sample's value from the Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == name:
            return float(value)
    return 0.0


async def scrape() -> str:
    response = await AsyncClient().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


async def test_metrics_count_connections_messages_errors_and_refusals(settings) -> None:
    settings.WS_RATE_LIMIT = 2
    settings.WS_RATE_BURST = 2
    before = await scrape()
    ws = communicator()
    assert (await ws.connect())[0]
    during = await scrape()
    await ws.send_to(text_data='{"t":"ctrl","cmd":"pause"}')  # echo only
    await ws.receive_from()
    await ws.send_to(text_data="bad")
    await ws.receive_from()
    await ws.send_to(text_data="over the limit")
    await ws.receive_from()
    refused = communicator(origin=b"http://evil.example")
    assert not (await refused.connect())[0]
    await ws.disconnect()
    after = await scrape()

    def delta(name: str, start: str = before, end: str = after) -> float:
        return metric(end, name) - metric(start, name)

    assert delta("backtests_ws_connections_open", before, during) == 1
    assert delta("backtests_ws_connections_open") == 0
    assert delta("backtests_ws_connections_opened_total") == 1
    assert delta("backtests_ws_messages_in_total") == 3
    assert delta("backtests_ws_messages_out_total") == 3
    assert delta('backtests_ws_errors_total{code="VALIDATION"}') == 1
    assert delta('backtests_ws_errors_total{code="RATE_LIMITED"}') == 1
    assert delta('backtests_ws_connections_refused_total{reason="origin"}') == 1


async def test_metrics_count_http_responses_by_status() -> None:
    before = await scrape()
    await AsyncClient().get("/nope")
    after = await scrape()
    name = 'backtests_http_requests_total{status="404"}'
    assert metric(after, name) - metric(before, name) == 1


async def test_request_id_is_generated_and_returned() -> None:
    first = await AsyncClient().get("/healthz")
    second = await AsyncClient().get("/healthz")
    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


async def test_incoming_request_id_is_honoured_and_bad_ones_replaced() -> None:
    response = await AsyncClient().get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response["X-Request-ID"] == "abc-123"
    response = await AsyncClient().get("/healthz", headers={"X-Request-ID": "bad id\n"})
    assert response["X-Request-ID"] != "bad id\n"


def json_lines(caplog) -> list[dict]:
    """The captured records as the JSON formatter writes them."""
    formatter = log.JsonFormatter()
    context = log.ContextFilter()
    lines = []
    for record in caplog.records:
        if not hasattr(record, "request_id"):
            context.filter(record)
        lines.append(json.loads(formatter.format(record)))
    return lines


async def test_http_log_lines_carry_the_request_id(caplog) -> None:
    caplog.set_level(logging.WARNING)
    caplog.handler.addFilter(log.ContextFilter())
    await AsyncClient().get("/nope", headers={"X-Request-ID": "trace-42"})
    lines = [line for line in json_lines(caplog) if line["logger"] == "django.request"]
    assert lines and lines[-1]["request_id"] == "trace-42"
    assert lines[-1]["msg"] == "Not Found: /nope"
    assert lines[-1]["level"] == "WARNING"


async def test_websocket_log_lines_carry_the_backtest_id(caplog) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(log.ContextFilter())
    ws = communicator("/backtests/run-77/ws")
    assert (await ws.connect())[0]
    await ws.disconnect()
    closed = [line for line in json_lines(caplog) if "websocket closed" in line["msg"]]
    assert closed[-1]["backtest_id"] == "run-77"


def test_json_formatter_writes_one_object_per_line_with_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, "f", 1, "failed %s", ("here",), sys.exc_info()
        )
    line = log.JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["msg"] == "failed here"
    assert "ValueError: boom" in entry["exc"]


def test_console_format_is_a_setting(tmp_path) -> None:
    from tests.test_settings import run_manage

    code = "from django.conf import settings as s; print(s.LOGGING['handlers']['console'])"
    out = run_manage(tmp_path, "shell", "-c", code, LOG_FORMAT="console")
    assert "'formatter': 'console'" in out.stdout
    out = run_manage(tmp_path, "shell", "-c", code)
    assert "'formatter': 'json'" in out.stdout
    bad = run_manage(tmp_path, "check", LOG_FORMAT="xml")
    assert bad.returncode != 0 and "LOG_FORMAT='xml'" in bad.stderr


def test_a_clients_invalid_utf8_is_one_info_line_without_traceback(caplog) -> None:
    # As uvicorn reports it: logger.exception(...) inside `except UnicodeDecodeError`.
    logger = logging.getLogger("uvicorn.error")
    try:
        b"\xff".decode()
    except UnicodeDecodeError:
        logger.exception("Invalid UTF-8 sequence received from client.")
    [record] = [r for r in caplog.records if r.name == "uvicorn.error"]
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert record.getMessage().startswith("Invalid UTF-8 sequence received from client.")
    assert "1007" in record.getMessage()


def test_other_server_errors_keep_their_level_and_traceback(caplog) -> None:
    try:
        raise ValueError("a real failure")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    [record] = [r for r in caplog.records if r.name == "uvicorn.error"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
