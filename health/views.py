"""Operational endpoints: liveness, readiness and metrics (docs/operations.md)."""

import asyncio
import hmac
import time

import orjson
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from accounts import authentication
from backtests.catalog.rest import forbidden, unauthenticated

HEALTHY = b'{"status":"ok"}'
CHECK_TIMEOUT = 2.0  # seconds, per readiness check


# Exempt from CSRF so that an unsafe method gets its 405 rather than a CSRF 403.
@csrf_exempt
@require_safe
async def healthz(request: HttpRequest) -> HttpResponse:
    """GET/HEAD /healthz: 200 {"status":"ok"} while the process serves requests."""
    return HttpResponse(HEALTHY, content_type="application/json")


def query_database() -> None:
    """A real round trip to the database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def check_database() -> None:
    """Raise unless the database answers a query."""
    await sync_to_async(query_database)()


async def check_channel_layer() -> None:
    """Raise unless a message sent on a fresh channel comes back."""
    layer = get_channel_layer()
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError(f"unexpected message {message!r}")


async def run_check(check) -> str:
    """'ok', or what went wrong, within CHECK_TIMEOUT."""
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"timeout after {CHECK_TIMEOUT:g}s"
    except Exception as exc:
        return f"error: {type(exc).__name__}: {str(exc)[:200]}"
    return "ok"


@csrf_exempt
@require_safe
async def readyz(request: HttpRequest) -> HttpResponse:
    """GET/HEAD /readyz: 200 when the database and the channel layer answer, else 503."""
    started = time.monotonic()
    names = ("database", "channel_layer")
    results = await asyncio.gather(run_check(check_database), run_check(check_channel_layer))
    checks = dict(zip(names, results, strict=True))
    ready = all(result == "ok" for result in results)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": checks,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return HttpResponse(
        orjson.dumps(body), status=200 if ready else 503, content_type="application/json"
    )


def is_metrics_token(request: HttpRequest) -> bool:
    """Whether the request's Bearer token is METRICS_TOKEN (compared in constant time)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return bool(
        settings.METRICS_TOKEN
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode())
    )


async def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """Under AUTH_MODE=required, the 401 or 403 unless METRICS_TOKEN or a staff user."""
    if not authentication.required() or is_metrics_token(request):
        return None
    try:
        user = await authentication.authenticate(request)
    except authentication.BadCredentials as bad:
        return unauthenticated(str(bad), bad_token=True)
    if not user.is_authenticated:
        return unauthenticated("/metrics needs METRICS_TOKEN or a staff user's credentials")
    if not user.is_staff:
        return forbidden("/metrics is for staff users and METRICS_TOKEN")
    return None


@csrf_exempt
@require_safe
async def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics: this process's metrics in the Prometheus text format."""
    refused = await metrics_refusal(request)
    if refused is not None:
        return refused
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
