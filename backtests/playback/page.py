"""GET /backtests/<id>/play: a page that plays a run (template and static files)."""

import asyncio

import numpy as np
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts import authentication
from backtests.catalog import access, queries
from backtests.catalog.serializers import run_detail
from backtests.engine.indicators import decimal_ticks
from backtests.pages.formatting import params_text
from backtests.playback import frames
from backtests.playback.run_data import (
    CACHE,
    PlaybackFull,
    RunData,
    RunNotFound,
    RunNotPlayable,
    Unplayable,
)

WAITING = ("QUEUED", "RUNNING")


def speed_presets(data: RunData) -> list[tuple[int, str, bool]]:
    """(speed, label, selected) choices for the viewer, by the run's length and interval:
    the whole run in about a minute, slower and faster; the run's own speed selected."""
    minute = max(1, round(data.bars * data.bar_seconds / 60))
    choices = {
        max(1, round(minute * factor)): label
        for factor, label in (
            (0.1, "the run in about 10 minutes"),
            (0.25, "the run in about 4 minutes"),
            (1, "the run in about a minute"),
            (4, "the run in about 15 seconds"),
        )
    }
    choices.setdefault(data.speed, "the run's own speed")
    return [(speed, label, speed == data.speed) for speed, label in sorted(choices.items())]


def price_places(close: np.ndarray) -> int:
    """The decimals the instrument's prices are quoted in (2 when they are on no tick)."""
    ticked = decimal_ticks(close)
    if ticked is None:
        return 2
    return max(2, round(np.log10(ticked[1])))


async def viewer_user(request: HttpRequest):
    """The user under AUTH_MODE=required (a session, or a token), or None."""
    try:
        user = await authentication.authenticate(request)
    except authentication.BadCredentials:
        return None
    return user if user.is_authenticated else None


@require_safe
async def play(request: HttpRequest, run_id: str) -> HttpResponse:
    """The viewer: the run's header, charts, running metrics, play, pause, speed, seek."""
    user = None
    if authentication.required():
        user = await viewer_user(request)
        if user is None:
            return redirect_to_login(request.get_full_path())
    context = {"run_id": run_id, "status": None, "bars": 0, "presets": [], "playable": False}
    run = await queries.get_run(run_id)
    if run is None:
        return render(request, "backtests/play.html", context, status=404)
    if user is not None and not access.may_read_run(user, run.owner_id):
        context["problem"] = f"run {run_id} is another user's"
        return render(request, "backtests/play.html", context, status=403)
    detail = run_detail(run)
    context.update(run=detail, params_text=params_text(detail["params"]), status=run.status)
    if run.status != "DONE":
        # QUEUED and RUNNING: the page waits for DONE on the socket; ERROR and CANCELLED
        # will never play, and say why.
        return render(request, "backtests/play.html", context)
    try:
        data = await CACHE.get(run_id)  # the socket that the page opens shares this load
    except RunNotFound:
        return render(request, "backtests/play.html", {**context, "status": None}, status=404)
    except RunNotPlayable as not_done:
        context["status"] = not_done.status
        return render(request, "backtests/play.html", context)
    except PlaybackFull as full:
        return render(request, "backtests/play.html", {**context, "problem": full}, status=503)
    except Unplayable as mismatch:
        return render(request, "backtests/play.html", {**context, "problem": mismatch}, status=409)
    context.update(
        playable=True,
        bars=data.bars,
        first=frames.iso(data.ts[0]),
        last=frames.iso(data.ts[-1]),
        presets=speed_presets(data),
        # Scanning a year of closes for their tick: in a thread, off the event loop.
        precision=await asyncio.to_thread(price_places, data.close),
    )
    return render(request, "backtests/play.html", context)
