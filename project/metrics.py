"""The process's Prometheus metrics (GET /metrics, docs/operations.md)."""

from prometheus_client import Counter, Gauge

WS_OPEN = Gauge("backtests_ws_connections_open", "WebSocket connections open now")
WS_OPENED = Counter("backtests_ws_connections_opened", "WebSocket connections accepted")
WS_REFUSED = Counter(
    "backtests_ws_connections_refused",
    "WebSocket handshakes refused, by reason",
    ["reason"],  # origin, route, capacity, auth, forbidden, client
)
WS_MESSAGES_IN = Counter("backtests_ws_messages_in", "WebSocket frames received")
WS_MESSAGES_OUT = Counter("backtests_ws_messages_out", "WebSocket frames sent")
WS_ERRORS = Counter(
    "backtests_ws_errors", "WebSocket err frames sent, by code", ["code"]
)  # VALIDATION, RATE_LIMITED, INTERNAL
SSE_OPEN = Gauge("backtests_sse_streams_open", "Server-Sent Events streams open now")
PLAYBACK_LOADS = Counter(
    "backtests_playback_run_loads", "Runs' arrays read from disk for playback (once per run)"
)
PLAYBACK_CACHE_BYTES = Gauge(
    "backtests_playback_cache_bytes",
    "Bytes of runs' arrays in memory for playback in this process (held by players or cached)",
)
PLAYBACK_REFUSED = Counter(
    "backtests_playback_refused",
    "Plays refused because the runs that players hold fill PLAYBACK_CACHE_BYTES (BUSY)",
)
HTTP_REQUESTS = Counter("backtests_http_requests", "HTTP responses, by status", ["status"])
