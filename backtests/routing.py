"""WebSocket URL patterns of the backtests app."""

from django.urls import re_path

from backtests.playback import consumers

# A backtest id: 1 to 64 characters, a letter or digit first, then letters, digits, _ or -.
websocket_urlpatterns = [
    re_path(
        r"^backtests/(?P<backtest_id>[A-Za-z0-9][A-Za-z0-9_-]{0,63})/ws$",
        consumers.PlaybackConsumer.as_asgi(),
        name="backtest-ws",
    ),
]
