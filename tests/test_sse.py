"""GET /backtests/<id>/stream: errors before the stream (in process), then the stream itself
and client disconnects against real servers (daphne and uvicorn)."""

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog_factories import make_dataset, make_run
from tests.live_jobs import api, manage
from tests.live_server import LiveServer, live_server

DEMO_RUN = "01HM65JQM043J5BD14TQ8NBVDK"  # sma-20-50 over the demo's AAPL 2023 bars
SSE_OPEN = "backtests_sse_streams_open"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?speed=0", "speed"),
        ("?speed=abc", "speed"),
        ("?speed=nan", "speed"),
        ("?from=-1", "from"),
        ("?from=yesterday", "from"),
        ("?speed=1&speed=2", "speed"),
        ("?sped=60", "sped"),
        ("?from=%C2%B2", "from"),  # a superscript two: a digit to str.isdigit()
        ("?from=%D9%A3", "from"),  # an Arabic-Indic three: a digit to int()
        ("?from=" + "9" * 5000, "from"),  # past int()'s 4,300 digits
        ("?from=" + "9" * 19, "from"),
    ],
)
def test_bad_query_is_a_422_naming_the_field(api, query: str, field: str) -> None:
    response = api.get(f"/backtests/{DEMO_RUN}/stream{query}")
    assert response.status_code == 422
    assert field in response.data["error"]["details"]


@pytest.mark.parametrize("value", ["\xb2", "\u0663", "9" * 5000, "-1", "1.5", ""])
def test_a_bad_last_event_id_is_a_422(api, value: str) -> None:
    response = api.client.get(f"/backtests/{DEMO_RUN}/stream", headers={"Last-Event-ID": value})
    api.checked("GET", f"/backtests/{DEMO_RUN}/stream", response)
    assert response.status_code == 422
    assert "Last-Event-ID" in response.data["error"]["details"]


# The view looks the run up in a worker thread: on PostgreSQL that needs a committed
# database, not the test's open transaction.
@pytest.mark.django_db(transaction=True)
def test_an_unknown_run_is_a_404(api) -> None:
    response = api.get("/backtests/01HM65JQM043J5BD14TQ8NBVDX/stream")
    assert response.status_code == 404
    assert response.data["error"]["code"] == "RUN_NOT_FOUND"


@pytest.mark.django_db(transaction=True)
def test_a_run_that_is_not_done_is_a_400_range(api) -> None:
    run = make_run(make_dataset(), status="RUNNING")
    response = api.get(f"/backtests/{run.run_id}/stream")
    assert response.status_code == 400
    assert response.data["error"] == {
        "code": "RANGE",
        "message": f"run {run.run_id} is RUNNING: only a DONE run can be played",
        "details": {"status": "RUNNING"},
    }


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sse")
    manage(tmp, "migrate", "--no-input")
    manage(tmp, "load_demo")
    return tmp


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, demo_dir: Path) -> Iterator[LiveServer]:
    with live_server(request.param, demo_dir, WS_HEARTBEAT_INTERVAL="0.2") as live:
        yield live


def open_stream(server: LiveServer, query: str = "", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", f"/backtests/{DEMO_RUN}/stream{query}", headers=headers or {})
    return conn, conn.getresponse()


def read_events(response, count: int) -> list[dict]:
    """The next `count` events or comments: {"event", "id", "data"} or {"comment"}."""
    events, current = [], {}
    while len(events) < count:
        line = response.readline().decode().rstrip("\n")
        if line.startswith(":"):
            events.append({"comment": line[1:].strip()})
        elif line == "":
            if current:
                events.append(current)
                current = {}
        else:
            key, _, value = line.partition(": ")
            current[key] = value
    return events


@pytest.mark.e2e
def test_the_stream_sends_the_sockets_frames(server: LiveServer) -> None:
    conn, response = open_stream(server, "?speed=180000&from=100")
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("X-Accel-Buffering") == "no"
    events = read_events(response, 5)
    first = 100
    for event in events:
        assert event["event"] == "frame"
        frame = json.loads(event["data"])
        assert frame["t"] == "frame" and int(event["id"]) == frame["i"]
        assert frame["i"] - frame["n"] + 1 == first  # consecutive from `from`
        first = frame["i"] + 1
    conn.close()


@pytest.mark.e2e
def test_last_event_id_resumes_after_that_bar(server: LiveServer) -> None:
    conn, response = open_stream(server, "?speed=60000", {"Last-Event-ID": "5000"})
    frame = json.loads(read_events(response, 1)[0]["data"])
    assert frame["i"] - frame["n"] + 1 == 5001
    conn.close()


@pytest.mark.e2e
def test_a_slow_stream_sends_heartbeat_comments(server: LiveServer) -> None:
    conn, response = open_stream(server, "?speed=1")  # one bar a minute
    assert read_events(response, 2) == [{"comment": "hb"}, {"comment": "hb"}]
    conn.close()


@pytest.mark.e2e
def test_the_stream_ends_with_an_end_event(server: LiveServer) -> None:
    conn, response = open_stream(server, "?speed=10000000&from=97000")
    events = read_events(response, 2)
    assert events[-1] == {"event": "end", "data": "{}"}
    conn.close()


@pytest.mark.e2e
def test_a_client_that_leaves_ends_its_stream_at_once(server: LiveServer) -> None:
    streams = [open_stream(server, "?speed=60") for _ in range(5)]
    deadline = time.monotonic() + 5
    while server.metric(SSE_OPEN) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for conn, _ in streams:
        conn.sock.close()
        conn.close()
    server.wait_for_metric(SSE_OPEN, 0, timeout=5)  # no stream left running
    assert "Traceback" not in server.log()
    assert api(server.http_url, "GET", "/healthz")[0] == 200


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_streams_hold_their_runs_within_the_playback_budget(demo_dir: Path, kind: str) -> None:
    """Six slow streams of six runs took daphne from 575 to 1,805 MiB with a 512 MiB budget:
    now a run that does not fit beside those being streamed is refused, 503 BUSY."""
    with live_server(kind, demo_dir, name="budget", PLAYBACK_CACHE_BYTES="1048576") as live:
        done = api(live.http_url, "GET", "/backtests?status=DONE&limit=50")[1]["items"]
        minute = [r["run_id"] for r in done if r["dataset"]["interval"] == "1m"]
        first, second = minute[:2]

        def stream(run_id: str):
            conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
            conn.request("GET", f"/backtests/{run_id}/stream?speed=60")
            return conn, conn.getresponse()

        held, response = stream(first)
        assert response.status == 200
        read_events(response, 1)
        size = live.metric("backtests_playback_cache_bytes")
        assert size > 1048576  # one run is always let in, whatever its size
        refused, busy = stream(second)
        assert busy.status == 503 and busy.getheader("Retry-After") == "10"
        assert json.loads(busy.read())["error"]["code"] == "BUSY"
        refused.close()
        assert live.metric("backtests_playback_cache_bytes") == size  # nothing more loaded
        assert live.metric("backtests_playback_refused_total") == 1
        held.sock.close()
        held.close()
        live.wait_for_metric(SSE_OPEN, 0, timeout=5)
        conn, response = stream(second)  # the first run is let go: the second fits now
        assert response.status == 200
        conn.sock.close()
        conn.close()
        live.wait_for_metric(SSE_OPEN, 0, timeout=5)
        assert "Traceback" not in live.log()


@pytest.mark.e2e
def test_streams_past_the_clients_limit_are_429_then_recover(demo_dir: Path) -> None:
    with live_server("daphne", demo_dir, name="sse-quota", SSE_MAX_PER_CLIENT="1") as live:
        first, response = open_stream(live, "?speed=1")
        assert response.status == 200
        second, refused = open_stream(live)
        assert refused.status == 429
        assert refused.getheader("Retry-After") == "5"
        assert json.loads(refused.read())["error"]["code"] == "RATE_LIMITED"
        second.close()
        first.close()  # the server sees it go at its next heartbeat or write
        deadline = time.monotonic() + 15
        while True:
            third, again = open_stream(live, "?speed=1")
            if again.status == 200 or time.monotonic() > deadline:
                break
            third.close()
            time.sleep(0.2)
        assert again.status == 200
        third.close()
