"""Oversized requests against the real servers: refused before they are read (#17)."""

import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.live_jobs import api, manage
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.e2e
LIMIT = 1 << 20  # HTTP_MAX_BODY_BYTES, the default


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("limits")
    manage(tmp, "migrate", "--no-input")
    return tmp


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, state: Path) -> Iterator[LiveServer]:
    with live_server(request.param, state) as live:
        yield live


def exchange(server: LiveServer, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request head (and body pieces), then read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(head)
        try:
            for chunk in body_chunks:
                conn.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest: what we want to see
        answer = b""
        try:
            while data := conn.recv(65536):
                answer += data
        except ConnectionResetError:
            pass  # closed with our unread bytes: the answer came before the reset
        return answer


def declaring(length: int) -> bytes:
    return (
        b"POST /backtests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(length).encode() + b"\r\n\r\n"
    )


def test_a_declared_length_over_the_limit_is_413_before_any_body(server: LiveServer) -> None:
    started = time.monotonic()
    answer = exchange(server, declaring(512 << 20))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"code":"PAYLOAD_TOO_LARGE"' in answer and b'"limit":1048576' in answer
    assert time.monotonic() - started < 2  # daphne spooled the 512 MiB to a file first
    assert api(server.http_url, "GET", "/healthz")[0] == 200


def test_a_length_of_23_digits_is_answered_at_once(server: LiveServer) -> None:
    started = time.monotonic()
    answer = exchange(server, declaring(99999999999999999999999))
    # daphne: 413, as any length over the limit; uvicorn's parser: 400, not a length.
    assert answer.startswith((b"HTTP/1.1 413 ", b"HTTP/1.1 400 ")), answer[:200]
    assert time.monotonic() - started < 2  # daphne gave no answer in 10 s before


def test_a_chunked_body_is_refused_at_the_limit(server: LiveServer) -> None:
    piece = b"x" * 65536
    chunks = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(LIMIT // len(piece) + 1))
    answer = exchange(
        server,
        b"POST /backtests HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        chunks,
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"code":"PAYLOAD_TOO_LARGE"' in answer
    assert "Traceback" not in server.log()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_huge_header_is_refused_without_holding_it(server: LiveServer) -> None:
    before = rss_kib(server.process.pid)
    filler = b"a" * 65536
    chunks = (filler for _ in range(1024))  # a 64 MiB header, as in the audit
    answer = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ", chunks)
    # uvicorn: 431 past HTTP_MAX_HEADER_BYTES; daphne closes on a header line over 16 KiB.
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b"", answer[:200]
    assert rss_kib(server.process.pid) - before < 20_000  # it grew 130 MB under uvicorn
    assert api(server.http_url, "GET", "/healthz")[0] == 200


def test_headers_within_the_limit_pass(server: LiveServer) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(80))  # about 9 KiB
    assert exchange(server, head + b"\r\n").startswith(b"HTTP/1.1 200 ")


def test_uvicorn_answers_431_with_the_envelope(state: Path) -> None:
    with live_server("uvicorn", state, name="small-head", HTTP_MAX_HEADER_BYTES="4096") as live:
        head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 8000 + b"\r\n\r\n"
        answer = exchange(live, head)
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b'"code":"HEADERS_TOO_LARGE"' in answer and b'"limit":4096' in answer
        assert api(live.http_url, "GET", "/healthz")[0] == 200
