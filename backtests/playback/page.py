"""GET /backtests/<id>/play: a page that plays a run (template and static files)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from backtests.playback import frames
from backtests.playback.run_data import CACHE, RunNotFound, RunNotPlayable


@require_safe
async def play(request: HttpRequest, run_id: str) -> HttpResponse:
    """The viewer: charts, running metrics, play, pause, speed presets and a scrubber."""
    context = {"run_id": run_id, "status": "DONE", "bars": 0, "first": "", "last": ""}
    try:
        data = await CACHE.get(run_id)  # the socket that the page opens shares this load
    except RunNotFound:
        return render(request, "backtests/play.html", {**context, "status": None}, status=404)
    except RunNotPlayable as not_done:
        context["status"] = not_done.status  # the page waits for DONE on the socket
    else:
        context.update(bars=data.bars, first=frames.iso(data.ts[0]), last=frames.iso(data.ts[-1]))
    return render(request, "backtests/play.html", context)
