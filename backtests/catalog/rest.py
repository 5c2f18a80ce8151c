"""REST plumbing for the catalog's views: JSON responses, error envelopes, method checks.

Every response on an API path is JSON, errors included: `{"error": {...}}` with a code
from backtests/errors.py.
"""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import authentication, quotas
from backtests.catalog.validation import ValidationError
from backtests.errors import ErrorCode, rest_error

logger = logging.getLogger(__name__)

AsyncView = Callable[..., Awaitable[HttpResponse]]
JSON = "application/json"


def json_response(data: Any, status: int = 200) -> HttpResponse:
    """A JSON response."""
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def error_response(
    code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> HttpResponse:
    """An error envelope with the HTTP status of its code."""
    return json_response(rest_error(code, message, details), status=code.http_status)


def unauthenticated(message: str, bad_token: bool = False) -> HttpResponse:
    """401 UNAUTHENTICATED with the challenge that says how to authenticate (RFC 6750)."""
    response = error_response(ErrorCode.UNAUTHENTICATED, message)
    challenge = 'Bearer realm="backtests"'
    response["WWW-Authenticate"] = challenge + (', error="invalid_token"' if bad_token else "")
    return response


def rate_limited(over: quotas.OverQuota) -> HttpResponse:
    """429 RATE_LIMITED with the limit and when to try again."""
    response = error_response(
        ErrorCode.RATE_LIMITED, str(over), {"limit": over.limit, "retry_after": over.retry_after}
    )
    response["Retry-After"] = str(over.retry_after)
    return response


def client_address(request: HttpRequest) -> str:
    """The client's address, as the server saw it (behind a proxy: its --proxy-headers)."""
    return request.META.get("REMOTE_ADDR", "") or ""


def client_key(request: HttpRequest) -> str:
    """Whom the request's quotas count: its user, or its address."""
    return quotas.client_key(request.user, client_address(request))


def forbidden(message: str, details: dict[str, Any] | None = None) -> HttpResponse:
    """403 FORBIDDEN: authenticated, but not allowed this."""
    return error_response(ErrorCode.FORBIDDEN, message, details)


async def authenticated(request: HttpRequest) -> HttpResponse | None:
    """Authenticate the request (request.user); the error response when it may not go on."""
    try:
        user = await authentication.authenticate(request)
    except authentication.BadCredentials as bad:
        return unauthenticated(str(bad), bad_token=True)
    except authentication.CsrfFailed as failed:
        return forbidden(f"CSRF check failed: {failed}", {"X-CSRFToken": "send the csrftoken"})
    if authentication.required() and not user.is_authenticated:
        return unauthenticated(
            "authentication required: send 'Authorization: Bearer <token>' or log in"
        )
    if request.method in UNSAFE:
        try:
            await sync_to_async(quotas.take_post)(client_key(request))
        except quotas.OverQuota as over:
            return rate_limited(over)
    return None


UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def api_view(*methods: str, json_body: bool = True) -> Callable[[AsyncView], AsyncView]:
    """Make an async view an API endpoint: allowed methods, authentication, JSON errors.

    Authentication (accounts/authentication.py) sets request.user: a Bearer token, or
    the session, whose unsafe requests get Django's CSRF check there (not from the
    middleware, which would refuse token clients' cross-origin POSTs too). What keeps
    another site's page from writing in any case: an unsafe request must say
    `Content-Type: application/json` (415 otherwise; `json_body=False` for a view that
    takes other types and checks them itself), which no form and no `no-cors` fetch can
    send, and which makes a browser ask first (a CORS preflight).
    """
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
    allow_header = ", ".join(sorted(allowed))

    def decorate(view: AsyncView) -> AsyncView:
        @csrf_exempt
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = error_response(
                    ErrorCode.METHOD_NOT_ALLOWED,
                    f"method {request.method} is not allowed here",
                    {"allowed": sorted(allowed)},
                )
                response["Allow"] = allow_header
                return response
            if json_body and request.method in UNSAFE and request.content_type != JSON:
                return error_response(
                    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                    f"a {request.method} here is sent as {JSON}, not "
                    f"{request.content_type or 'no Content-Type'}",
                    {"Content-Type": f"must be {JSON}"},
                )
            try:
                refused = await authenticated(request)
                if refused is not None:
                    return refused
                return await view(request, *args, **kwargs)
            except ValidationError as error:
                return error_response(ErrorCode.VALIDATION, error.message, error.details)
            except RequestDataTooBig:
                return error_response(ErrorCode.PAYLOAD_TOO_LARGE, "request body is too large", {})
            except (OperationalError, InterfaceError) as exc:
                # The database restarted or dropped the connection: nothing was written
                # (each write is one transaction), so the client may simply try again.
                logger.warning(
                    "database unavailable in %s %s: %r", request.method, request.path, exc
                )
                response = error_response(
                    ErrorCode.BUSY, "the database is unavailable for a moment; retry", {}
                )
                response["Retry-After"] = "1"
                return response
            except Exception:
                logger.exception("unhandled error in %s %s", request.method, request.path)
                return error_response(ErrorCode.INTERNAL, "internal server error")

        return wrapper

    return decorate
