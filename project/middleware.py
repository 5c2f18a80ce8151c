"""Django's middleware, adapted so that API and probe requests take no thread hops.

Under ASGI, Django runs each hook of a sync-style middleware (MiddlewareMixin) through
sync_to_async: two thread hops per middleware per request. That is right for hooks that
do I/O, but wasted on hooks that only read and set headers, and the session, auth,
messages and CSRF middleware serve the admin's cookie-based pages, not the JSON API or
the probes. So:

- `inline(...)`: hooks that do no I/O run on the event loop, for every request.
- `site_only(...)`: API and probe paths skip the middleware; other paths (the admin)
  get it exactly as Django runs it.
"""

import re
import uuid

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin

from project import log, metrics

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

API_PATHS = ("/backtests", "/datasets", "/strategies", "/sweeps", "/healthz", "/readyz", "/metrics")


def is_api_path(path: str) -> bool:
    """Whether a request path belongs to the JSON API or a probe."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PATHS)


def inline(middleware: type[MiddlewareMixin]) -> type[MiddlewareMixin]:
    """The middleware with its request and response hooks called on the event loop.

    Only for middleware whose hooks do no I/O: they would block the loop otherwise.
    """

    class Inline(middleware):
        async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
            response = None
            if hasattr(self, "process_request"):
                response = self.process_request(request)
            response = response or await self.get_response(request)
            if hasattr(self, "process_response"):
                response = self.process_response(request, response)
            return response

    Inline.__name__ = Inline.__qualname__ = middleware.__name__
    Inline.__doc__ = f"{middleware.__doc__ or middleware.__name__} (hooks run on the event loop)"
    return Inline


def site_only(middleware: type[MiddlewareMixin]) -> type[MiddlewareMixin]:
    """The middleware for the site's pages (the admin) only; API and probe paths skip it."""

    class SiteOnly(middleware):
        async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
            if is_api_path(request.path_info):
                return await self.get_response(request)
            return await super().__acall__(request)

    if hasattr(middleware, "process_view"):
        # Django calls a sync process_view through a thread hop; an async one directly.
        async def process_view(self, request, callback, callback_args, callback_kwargs):
            if is_api_path(request.path_info):
                return None
            hook = super(SiteOnly, self).process_view
            return await sync_to_async(hook)(request, callback, callback_args, callback_kwargs)

        SiteOnly.process_view = process_view

    SiteOnly.__name__ = SiteOnly.__qualname__ = middleware.__name__
    SiteOnly.__doc__ = f"{middleware.__doc__ or middleware.__name__} (site pages only)"
    return SiteOnly


SecurityMiddleware = inline(security.SecurityMiddleware)
CommonMiddleware = inline(common.CommonMiddleware)
XFrameOptionsMiddleware = inline(clickjacking.XFrameOptionsMiddleware)
SessionMiddleware = site_only(sessions.SessionMiddleware)
CsrfViewMiddleware = site_only(csrf.CsrfViewMiddleware)
AuthenticationMiddleware = site_only(auth.AuthenticationMiddleware)
MessageMiddleware = site_only(messages.MessageMiddleware)

# What the ASGI handler loads for each of Django's classes named in settings.MIDDLEWARE.
ADAPTED = {
    "django.middleware.security.SecurityMiddleware": SecurityMiddleware,
    "django.middleware.common.CommonMiddleware": CommonMiddleware,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": XFrameOptionsMiddleware,
    "django.contrib.sessions.middleware.SessionMiddleware": SessionMiddleware,
    "django.middleware.csrf.CsrfViewMiddleware": CsrfViewMiddleware,
    "django.contrib.auth.middleware.AuthenticationMiddleware": AuthenticationMiddleware,
    "django.contrib.messages.middleware.MessageMiddleware": MessageMiddleware,
}


class RequestIdMiddleware:
    """Tag each request with an id, and count responses by status.

    The id is the client's X-Request-ID when it is 1-128 of [A-Za-z0-9._:-], a new one
    otherwise; it is returned in the X-Request-ID response header and set for logging
    (project.log) for the rest of the request's task.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("RequestIdMiddleware runs under ASGI only")
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Set the id, run the request, stamp the response."""
        given = request.headers.get("X-Request-ID", "")
        rid = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        # Not reset afterwards: Django logs the response (django.request) after the
        # middleware chain returns, in the same task, and that line needs the id too.
        log.request_id.set(rid)
        response = await self.get_response(request)
        response["X-Request-ID"] = rid
        metrics.HTTP_REQUESTS.labels(str(response.status_code)).inc()
        return response


class ContentSecurityPolicyMiddleware:
    """Add settings.CONTENT_SECURITY_POLICY to every response that has none (no inline
    script anywhere: the pages' scripts are static files); on the event loop."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response) -> None:
        if not iscoroutinefunction(get_response):
            raise TypeError("ContentSecurityPolicyMiddleware runs under ASGI only")
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        """Run the request, then set the header."""
        response = await self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
