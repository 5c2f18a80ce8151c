"""ASGI entry point: `daphne project.asgi:application`.

Only composes: Django for HTTP (static files first, since daphne serves none), and for
WebSockets the origin check around a router that refuses what it cannot route.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Set up Django before anything imports models or reads settings.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from backtests.routing import websocket_urlpatterns  # noqa: E402
from project.static_files import StaticFilesHandler  # noqa: E402
from project.websocket_guards import OriginGuard, RefusingURLRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": StaticFilesHandler(django_asgi_app),
        "websocket": OriginGuard(RefusingURLRouter(websocket_urlpatterns)),
    }
)
