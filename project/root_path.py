"""Ignore a client's choice of root path.

daphne copies a `Daphne-Root-Path` request header into the scope's `root_path`, which
Django then takes as the prefix the site is mounted under: any client could make the
admin redirect to `/<anything>/admin/login/`, or move a request to another view by
cutting its path. This service is never mounted under a prefix chosen per request (set
FORCE_SCRIPT_NAME to mount it under one), so `root_path` is always empty, over HTTP and
for sockets alike.
"""


class IgnoreRootPath:
    """An ASGI wrapper that clears `root_path` before the application sees the scope."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send) -> None:
        """Pass the scope on, without a root path."""
        if scope.get("root_path"):
            scope = {**scope, "root_path": ""}
        return await self.application(scope, receive, send)
