"""uvicorn: a bound on a request's head (request line and headers), as daphne has.

uvicorn's httptools protocol keeps a header however long it grows: one 64 MiB header was
answered 200 and cost 130 MB. This protocol counts the bytes that arrive before the head
is complete and answers 431 once they pass HTTP_MAX_HEADER_BYTES (64 KiB), closing the
connection. Start uvicorn with `--http project.uvicorn_http:BoundedHttpToolsProtocol`
(as `make start-backend SERVER=uvicorn` does).
"""

import logging

import orjson
from django.conf import settings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from backtests.errors import ErrorCode, rest_error

logger = logging.getLogger(__name__)


def too_large_head(limit: int) -> bytes:
    """The whole 431 response, with the API's error envelope."""
    body = orjson.dumps(
        rest_error(
            ErrorCode.HEADERS_TOO_LARGE,
            f"request line and headers are over the {limit}-byte limit",
            {"limit": limit},
        )
    )
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a refused request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """httptools' protocol, refusing a request head over HTTP_MAX_HEADER_BYTES: while it
    arrives (a head that never ends), and once parsed (one that came in a single read)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.in_head = True  # a connection starts with a request's head
        self.head_bytes = 0
        self.refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self.in_head = False
        # The head's size as parsed: the target, and each header with ": " and CRLF.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > settings.HTTP_MAX_HEADER_BYTES:
            self.refuse()
            raise HeadTooLarge  # the parser stops: the request never reaches the app
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; refuse once the head so far is over the limit."""
        if self.refused:
            return
        counting = self.in_head
        super().data_received(data)
        if not (counting and self.in_head) or self.refused:
            return
        self.head_bytes += len(data)
        if self.head_bytes > settings.HTTP_MAX_HEADER_BYTES:
            self.refuse()

    def refuse(self) -> None:
        """Answer 431 and close the connection."""
        limit = settings.HTTP_MAX_HEADER_BYTES
        logger.info("request head over %d bytes refused", limit)
        self.refused = True
        self.transport.write(too_large_head(limit))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's 400 for a parser error, except after our own refusal."""
        if not self.refused:
            super().send_400_response(msg)
