"""Django's ASGI handler, without the per-request thread for probes that need none.

Django's ASGIHandler runs every request in a ThreadSensitiveContext: the request's sync
work (ORM calls, sync middleware, signal receivers) goes to a thread created for that
request and joined at its end, so that one request's database connection is never used
by another. Profiled under GET /healthz load, creating and joining that thread, and
hopping to it for the request signals, was most of the request's cost.

- Probe paths (settings.THREADLESS_PATHS) never touch the database: they skip the
  per-request context, and the little sync work left (the request_finished receivers)
  runs on asgiref's one shared thread.
- request_started's receivers (close_old_connections, reset_queries) are disconnected:
  under this handler they run on a thread created for the request a moment earlier, or on
  the shared thread that holds no connections, so they never have anything to do.
  request_finished's close_old_connections stays: it returns the request's connection.
- Django's middleware named in settings.MIDDLEWARE is loaded in its adapted form
  (project/middleware.py ADAPTED), so that the setting names Django's own classes and
  `manage.py check --deploy` sees them.
"""

from asgiref.sync import ThreadSensitiveContext
from django.conf import settings
from django.core import signals
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.db import close_old_connections, reset_queries

from project.middleware import ADAPTED


class ASGIHandler(DjangoASGIHandler):
    """Django's ASGI handler; probe requests get no thread of their own."""

    def __init__(self) -> None:
        super().__init__()
        signals.request_started.disconnect(close_old_connections)
        signals.request_started.disconnect(reset_queries)

    def load_middleware(self, is_async: bool = False) -> None:
        """Django's loading, with each of Django's classes swapped for its adapted form."""
        import_string = base.import_string
        # Django's loop imports each path with base.import_string: it is the one place to
        # swap a class without copying the loop (start-up runs it once, in one thread).
        base.import_string = lambda path: ADAPTED.get(path) or import_string(path)
        try:
            super().load_middleware(is_async)
        finally:
            base.import_string = import_string

    async def __call__(self, scope, receive, send) -> None:
        """Handle one HTTP request, in a thread-sensitive context unless it is a probe."""
        if scope["type"] == "http" and scope["path"] in settings.THREADLESS_PATHS:
            await self.handle(scope, receive, send)
            return
        async with ThreadSensitiveContext():
            await self.handle(scope, receive, send)
