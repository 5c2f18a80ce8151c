"""HTTP routes. WebSocket routes are in backtests/routing.py."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("health.urls")),
    path("", include("accounts.urls")),
    path("", include("backtests.urls")),
    path("admin/", admin.site.urls),
]

handler500 = "backtests.catalog.views.server_error"
