"""End to end: a real server process (daphne, and uvicorn, the documented alternative),
spoken to over real sockets with real client libraries."""

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.e2e

FRONTEND = "http://localhost:5173"
PLAY = '{"t":"ctrl","cmd":"play"}'


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    kind = request.param
    with live_server(kind, tmp_path_factory.mktemp(kind), WS_HEARTBEAT_INTERVAL="0.3") as live:
        yield live


def request(
    server: LiveServer, method: str, path: str, headers: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One raw HTTP request (paths are sent as given, `..` included); headers ignore case."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def open_ws(server: LiveServer, path: str = "/backtests/run-1/ws", **kwargs) -> ClientConnection:
    """Open a WebSocket as the frontend would."""
    kwargs.setdefault("origin", FRONTEND)
    return connect(server.ws_url + path, open_timeout=10, **kwargs)


def handshake_status(server: LiveServer, path: str, **kwargs) -> int:
    """The HTTP status of a refused handshake."""
    with pytest.raises(InvalidStatus) as refused:
        open_ws(server, path, **kwargs).close()
    return refused.value.response.status_code


def test_healthz_over_http(server: LiveServer) -> None:
    status, headers, body = request(server, "GET", "/healthz")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b'{"status":"ok"}')
    assert request(server, "HEAD", "/healthz")[0] == 200
    assert request(server, "POST", "/healthz")[0] == 405


def test_http_errors_are_4xx(server: LiveServer) -> None:
    assert request(server, "GET", "/healthz", {"Host": "evil.example"})[0] == 400
    assert request(server, "GET", "/nope")[0] == 404
    assert request(server, "GET", "/static/../project/settings.py")[0] == 404


def test_status_lines_carry_the_standard_reason_phrase(server: LiveServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/backtests", body=b"{}", headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert (response.status, response.reason) == (422, "Unprocessable Entity")


def test_admin_is_styled(server: LiveServer) -> None:
    status, headers, _ = request(server, "GET", "/static/admin/css/base.css")
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")


def test_cors_preflight_from_the_frontend(server: LiveServer) -> None:
    status, headers, _ = request(
        server,
        "OPTIONS",
        "/healthz",
        {"Origin": FRONTEND, "Access-Control-Request-Method": "GET"},
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == FRONTEND


def test_websocket_echo_errors_and_heartbeat(server: LiveServer) -> None:
    with open_ws(server) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) == PLAY  # the echo, then its effect: there is no run-1
        assert json.loads(ws.recv(timeout=5))["code"] == "RUN_NOT_FOUND"
        for bad in ("nope", '{"t":"ctrl","cmd":"seek","pos":-1}', "x" * 65537):
            ws.send(bad)
            assert json.loads(ws.recv(timeout=5))["code"] == "VALIDATION"
        ws.send(b"\x00\x01")
        assert json.loads(ws.recv(timeout=5))["code"] == "VALIDATION"
        speed = '{"t":"ctrl","cmd":"speed","val":120}'  # echoed; no run: no effect
        ws.send(speed)
        frames = [ws.recv(timeout=5) for _ in range(2)]
        assert speed in frames or ws.recv(timeout=5) == speed
        hb = next(f for f in [*frames, ws.recv(timeout=5)] if f != speed)
        assert json.loads(hb) == {"t": "hb"}


def test_frame_over_one_mebibyte_drops_only_that_connection(server: LiveServer) -> None:
    with open_ws(server, max_size=None) as ws:
        ws.send("x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    with open_ws(server) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) == PLAY


def test_refused_origin_gets_403(server: LiveServer) -> None:
    assert handshake_status(server, "/backtests/run-1/ws", origin="http://evil.example") == 403


@pytest.mark.parametrize("path", ["/nope/ws", "/backtests/a.b/ws", "/backtests/a%2Fb/ws"])
def test_unroutable_path_gets_403(server: LiveServer, path: str) -> None:
    assert handshake_status(server, path) == 403


def test_client_sent_root_path_header_is_ignored(server: LiveServer) -> None:
    with open_ws(server, additional_headers={"Daphne-Root-Path": "/elsewhere"}) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) == PLAY


def test_client_sent_root_path_header_is_ignored_over_http(server: LiveServer) -> None:
    import http.client

    def get(path: str, root: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", path, headers={"Daphne-Root-Path": root})
        response = conn.getresponse()
        response.body = response.read()
        conn.close()
        return response

    # It moved the admin's login redirect under any prefix a client chose.
    admin = get("/admin/", "/evil")
    assert admin.status == 302
    assert admin.getheader("Location") == "/admin/login/?next=/admin/"
    # And it cut a path down to another route's: /strategies became "/".
    listing = get("/strategies", "/strategies")
    assert listing.status == 200 and b'"items"' in listing.body


def test_connection_without_origin_is_accepted(server: LiveServer) -> None:
    with connect(server.ws_url + "/backtests/cli/ws", open_timeout=10) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) == PLAY


def test_server_log_has_no_traceback_and_logs_each_close(server: LiveServer) -> None:
    # Runs last in this module: everything above has happened in this server's log.
    assert server.process.poll() is None, "the server died"
    log = server.log()
    assert "Traceback" not in log
    assert " ERROR " not in log
    assert "websocket closed backtest_id=run-1 code=1000" in log
    assert "websocket refused: origin" in log
    assert urlsplit(server.http_url).hostname == "127.0.0.1"


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_server_stops_on_sigterm(tmp_path: Path, kind: str) -> None:
    with live_server(kind, tmp_path) as live, open_ws(live) as ws:
        ws.send(PLAY)
        assert ws.recv(timeout=5) == PLAY
    assert live.process.returncode is not None
