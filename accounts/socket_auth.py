"""Who opens a WebSocket: a token in `Sec-WebSocket-Protocol`, else the session cookie.

A browser's WebSocket cannot send an Authorization header, and a token in the URL would
land in logs and histories: a client passes it as a subprotocol entry instead,
`new WebSocket(url, ["backtests.v1", "bearer." + token])`; the server accepts the
`backtests.v1` protocol, never echoing the token. A page of this service's own origin is
authenticated by its session cookie, as Channels' AuthMiddlewareStack does (Channels'
own get_user), without its send wrapper, which would inspect the session on every frame.
Either way the check costs one query (the session is read from the cache).
"""

import logging
from importlib import import_module

from channels.auth import get_user
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.cookie import parse_cookie

from accounts import tokens
from accounts.authentication import required
from project import metrics
from project.websocket_guards import header, refuse

logger = logging.getLogger(__name__)

PROTOCOL = "backtests.v1"
TOKEN_ENTRY = "bearer."


def offered_token(scope: dict) -> str | None:
    """The token of a `bearer.<token>` subprotocol entry, if the client offered one."""
    for entry in scope.get("subprotocols") or ():
        if entry.startswith(TOKEN_ENTRY):
            return entry[len(TOKEN_ENTRY) :]
    return None


async def user_of(scope: dict):
    """The handshake's user; None for a token that authenticates no one."""
    token = offered_token(scope)
    if token is not None:
        return await tokens.user_for(token)
    cookies = header(scope, b"cookie")
    key = (
        parse_cookie(cookies.decode("latin-1")).get(settings.SESSION_COOKIE_NAME)
        if cookies
        else None
    )
    if not key:
        return AnonymousUser()
    session = import_module(settings.SESSION_ENGINE).SessionStore(key)
    return await get_user({"session": session})


class SocketAuth:
    """Under AUTH_MODE=required, refuse a handshake without a user (403); put the user in
    scope["user"] for the consumer's ownership check."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send) -> None:
        """Authenticate the handshake, then pass it on; refuse it without a user."""
        if not required():
            return await self.application(scope, receive, send)
        user = await user_of(scope)
        if user is None or not user.is_authenticated:
            logger.info("websocket refused: %s", "bad token" if user is None else "no credentials")
            metrics.WS_REFUSED.labels("auth").inc()
            return await refuse(scope, receive, send)
        return await self.application({**scope, "user": user}, receive, send)
