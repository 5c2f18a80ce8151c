"""Refuse HTTP request bodies over settings.HTTP_MAX_BODY_BYTES before reading them.

daphne and uvicorn buffer a whole body for the application, and Django checks its own
limit only when a view reads the body: a 1 GB POST to any URL would be read in full and
answered 200. This wrapper answers 413 as soon as the Content-Length, or the bytes
received so far, pass the limit (under daphne, project/daphne_limits.py does it earlier
still, before Twisted reads the body at all): settings.DATASET_MAX_BYTES for an upload of bars
(POST /datasets), HTTP_MAX_BODY_BYTES for every other request.
"""

import logging

import orjson
from django.conf import settings

from backtests.errors import ErrorCode, rest_error

logger = logging.getLogger(__name__)


def too_large_body(limit: int) -> bytes:
    """The 413 response's body: the API's error envelope."""
    envelope = rest_error(
        ErrorCode.PAYLOAD_TOO_LARGE,
        f"request body is over the {limit}-byte limit",
        {"limit": limit},
    )
    return orjson.dumps(envelope)


class BodyLimit:
    """An ASGI wrapper for HTTP: 413 for a body over the limit, declared or streamed."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send) -> None:
        """Check the declared length, then count the body as it arrives."""
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        limit = body_limit(scope)
        if declared_length(scope) > limit:
            return await self.refuse(send, limit)
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.application(scope, counting_receive, send)
        except BodyTooLarge:
            # Django reads the whole body before it responds, so nothing was sent yet.
            await self.refuse(send, limit)

    async def refuse(self, send, limit: int) -> None:
        """Send the 413 and close the connection (the rest of the body is never read)."""
        logger.info("request body over %d bytes refused", limit)
        body = too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def body_limit(scope: dict) -> int:
    """The largest body this request may carry."""
    return limit_for(scope["method"], scope["path"])


def limit_for(method: str, path: str) -> int:
    """The largest body a request with this method and path may carry."""
    if path == "/datasets" and method == "POST":
        return settings.DATASET_MAX_BYTES
    return settings.HTTP_MAX_BODY_BYTES


class BodyTooLarge(Exception):
    """Raised into the application when a streamed body passes the limit."""


def declared_length(scope: dict) -> int:
    """The request's Content-Length, or 0 when absent or unreadable."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
