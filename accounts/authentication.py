"""Who is asking: a Bearer token, else the Django session, else no one.

The API's views authenticate here (backtests/catalog/rest.py), not in middleware: API
paths skip the session and auth middleware (project/middleware.py), so that a request
without a cookie costs no query at all. A request that relies on the session cookie is
CSRF-checked when it is unsafe; one with a token is not (no browser adds it by itself).
"""

from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from accounts import tokens

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class BadCredentials(Exception):
    """The request sent credentials that do not authenticate anyone."""


class CsrfFailed(Exception):
    """A session-authenticated unsafe request without a valid CSRF token or origin."""


def required() -> bool:
    """Whether the API, its sockets and its streams need an authenticated user."""
    return settings.AUTH_MODE == "required"


def bearer(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; BadCredentials otherwise."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BadCredentials("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    """The request's user (AnonymousUser when it sent no credentials); sets request.user.

    Raises BadCredentials for a token that is malformed, unknown or revoked, and
    CsrfFailed for an unsafe request authenticated by its session without CSRF proof.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        user = await tokens.user_for(bearer(header))
        if user is None:
            raise BadCredentials("the token is not valid (unknown, revoked or malformed)")
    elif settings.SESSION_COOKIE_NAME in request.COOKIES:
        user = await session_user(request)
        if user.is_authenticated and request.method not in SAFE_METHODS:
            check_csrf(request)
    else:
        user = AnonymousUser()
    request.user = user
    return user


async def session_user(request: HttpRequest) -> AbstractBaseUser | AnonymousUser:
    """The user logged in to the request's session (Django's own check of the session)."""
    if not hasattr(request, "session"):  # the ASGI handler skips the session middleware
        engine = import_module(settings.SESSION_ENGINE)
        request.session = engine.SessionStore(request.COOKIES[settings.SESSION_COOKIE_NAME])
    return await auth.aget_user(request)


class ApiCsrf(CsrfViewMiddleware):
    """Django's CSRF check (origin, then token), raising instead of rendering a page."""

    def _reject(self, request: HttpRequest, reason: str) -> None:
        raise CsrfFailed(reason)

    def _accept(self, request: HttpRequest) -> None:
        return None


CSRF = ApiCsrf(lambda request: None)


def check_csrf(request: HttpRequest) -> None:
    """Raise CsrfFailed unless the request passes Django's CSRF check."""
    CSRF.process_request(request)
    CSRF.process_view(request, None, (), {})
