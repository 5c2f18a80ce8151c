"""ASGI wrappers that decide whether a WebSocket handshake reaches a consumer.

Both refuse with a plain close before accept, which servers answer with HTTP 403, and
log one INFO line: a refused handshake is the client's mistake, not a server error.
"""

import logging
from urllib.parse import urlsplit

from channels.routing import URLRouter
from django.conf import settings
from django.http.request import validate_host

from accounts import quotas
from project import metrics

logger = logging.getLogger(__name__)


def origin_allowed(origin: bytes | None) -> bool:
    """Whether a handshake's Origin header may open a socket.

    No header is allowed: browsers always send one, so only non-browser clients omit
    it, and refusing them protects nothing. Otherwise the origin must be a well-formed
    http(s) origin whose host is in ALLOWED_HOSTS or which is a configured CORS origin.
    """
    if origin is None:
        return True
    try:
        text = origin.decode("ascii")
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except (UnicodeDecodeError, ValueError):
        return False
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
    ):
        return False
    if text in settings.CORS_ALLOWED_ORIGINS:
        return True
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return validate_host(host, settings.ALLOWED_HOSTS)


def header(scope: dict, name: bytes) -> bytes | None:
    """The value of a header that must appear at most once; b"" when it is repeated."""
    values = [value for key, value in scope.get("headers", ()) if key == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b""


async def refuse(scope, receive, send) -> None:
    """Refuse the handshake: a close before accept, which servers answer with 403."""
    # A bare ASGI app rather than Channels' WebsocketDenier, which is a whole consumer
    # (channel-layer registration, database clean-up) for one close message.
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


class ConnectionCap:
    """Refuse WebSocket handshakes beyond settings.WS_MAX_CONNECTIONS open in this process.

    Counts every socket from its handshake until its consumer ends; existing sockets are
    unaffected when the cap refuses a new one.
    """

    def __init__(self, application) -> None:
        self.application = application
        self.open = 0

    async def __call__(self, scope, receive, send) -> None:
        """Pass the handshake on while under the cap; refuse it with 403 otherwise."""
        if self.open >= settings.WS_MAX_CONNECTIONS:
            logger.warning(
                "websocket refused: %d connections open, the limit", settings.WS_MAX_CONNECTIONS
            )
            metrics.WS_REFUSED.labels("capacity").inc()
            return await refuse(scope, receive, send)
        self.open += 1
        try:
            return await self.application(scope, receive, send)
        finally:
            self.open -= 1


class ClientCap:
    """Refuse a client's handshake beyond settings.WS_MAX_PER_CLIENT of its sockets open
    in this process: a client is its user (scope["user"], set by accounts.socket_auth),
    or its address."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send) -> None:
        """Pass the handshake on while the client is under its cap; refuse it otherwise."""
        address = (scope.get("client") or ("",))[0]
        key = quotas.client_key(scope.get("user"), address)
        try:
            slot = quotas.SOCKETS.take(key, settings.WS_MAX_PER_CLIENT, 0)
        except quotas.OverQuota:
            logger.info("websocket refused: %s has %d open", key, settings.WS_MAX_PER_CLIENT)
            metrics.WS_REFUSED.labels("client").inc()
            return await refuse(scope, receive, send)
        try:
            return await self.application(scope, receive, send)
        finally:
            slot.release()


class OriginGuard:
    """Refuse WebSocket handshakes from origins this service does not serve."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send) -> None:
        """Pass an allowed handshake on; refuse any other with 403."""
        origin = header(scope, b"origin")
        if origin_allowed(origin):
            return await self.application(scope, receive, send)
        logger.info("websocket refused: origin %r is not allowed", origin[:200])
        metrics.WS_REFUSED.labels("origin").inc()
        return await refuse(scope, receive, send)


class RefusingURLRouter(URLRouter):
    """A URLRouter that refuses a path it cannot route with 403 instead of raising.

    Channels' outermost URLRouter raises ValueError on no match, which daphne turns into
    a 500 and a logged traceback (channels#2147).
    """

    async def __call__(self, scope, receive, send) -> None:
        """Route the handshake, or refuse it when no route matches."""
        # root_path is cleared before this (project/root_path.py): a client's
        # Daphne-Root-Path would make URLRouter refuse every path outside it.
        path = scope["path"].lstrip("/")
        if not any(route.pattern.match(path) for route in self.routes):
            logger.info("websocket refused: no route for path %r", scope["path"][:200])
            metrics.WS_REFUSED.labels("route").inc()
            return await refuse(scope, receive, send)
        return await super().__call__(scope, receive, send)
