"""ASGI entry point: `daphne project.asgi:application`.

Only composes: Django for HTTP (static files first, since daphne serves none; the handler
is Django's, minus a thread per probe request: project/asgi_handler.py) behind a body
size limit (with standard reason phrases on daphne's status lines), and for WebSockets a
cap on open sockets, the origin check, authentication (AUTH_MODE=required), a cap per
client, and a router that refuses what it cannot route.
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

from accounts.socket_auth import SocketAuth  # noqa: E402
from backtests.routing import websocket_urlpatterns  # noqa: E402
from project import daphne_limits  # noqa: E402
from project.body_limit import BodyLimit  # noqa: E402
from project.reason_phrases import fill_twisted_reason_phrases  # noqa: E402
from project.root_path import IgnoreRootPath  # noqa: E402
from project.static_files import StaticFilesHandler  # noqa: E402
from project.websocket_guards import (  # noqa: E402
    ClientCap,
    ConnectionCap,
    OriginGuard,
    RefusingURLRouter,
)

fill_twisted_reason_phrases()
daphne_limits.install()

application = IgnoreRootPath(
    ProtocolTypeRouter(
        {
            "http": BodyLimit(StaticFilesHandler(django_asgi_app)),
            "websocket": ConnectionCap(
                OriginGuard(SocketAuth(ClientCap(RefusingURLRouter(websocket_urlpatterns))))
            ),
        }
    )
)

# Take the start-up heap (Django, Channels, the server: a few hundred thousand objects)
# out of the cyclic collector's full passes, which walk every tracked object: with
# thousands of sockets open those passes stall the event loop (docs/performance.md).
gc.freeze()
