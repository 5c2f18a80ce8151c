"""ASGI entry point: `daphne project.asgi:application`.

Only composes: Django for HTTP (static files first, since daphne serves none; the handler
is Django's, minus a thread per probe request: project/asgi_handler.py) behind a body
size limit, and for WebSockets a cap on open sockets, the origin check, and a router
that refuses what it cannot route.
"""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Set up Django before anything imports models or reads settings (what
# get_asgi_application() does, which would return Django's stock handler).
django.setup(set_prefix=False)

from project.asgi_handler import ASGIHandler  # noqa: E402

django_asgi_app = ASGIHandler()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from backtests.routing import websocket_urlpatterns  # noqa: E402
from project.body_limit import BodyLimit  # noqa: E402
from project.static_files import StaticFilesHandler  # noqa: E402
from project.websocket_guards import (  # noqa: E402
    ConnectionCap,
    OriginGuard,
    RefusingURLRouter,
)

application = ProtocolTypeRouter(
    {
        "http": BodyLimit(StaticFilesHandler(django_asgi_app)),
        "websocket": ConnectionCap(OriginGuard(RefusingURLRouter(websocket_urlpatterns))),
    }
)

# Memory management for a process that holds thousands of sockets: every socket keeps a
# few hundred objects alive, and each heartbeat or message makes short-lived ones. With
# the collector's defaults those are promoted before they die, and full collections,
# which walk every live object, stalled the loop for 0.4-0.7 s at 10,000 sockets (see
# docs/performance.md). Collect the young generation less often, so that per-message
# garbage dies young, and take the start-up heap out of the collector's walks.
gc.set_threshold(50_000, 20, 100)
gc.freeze()
