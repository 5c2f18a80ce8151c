"""Liveness probe: answers without touching the database or the channel layer."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

HEALTHY = b'{"status":"ok"}'


# Exempt from CSRF so that an unsafe method gets its 405 rather than a CSRF 403.
@csrf_exempt
@require_safe
async def healthz(request: HttpRequest) -> HttpResponse:
    """GET/HEAD /healthz: 200 {"status":"ok"} while the process serves requests."""
    return HttpResponse(HEALTHY, content_type="application/json")
