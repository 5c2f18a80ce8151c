"""GET /backtests/<id>/play: a page that plays a run (template and static files)."""

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts import authentication
from backtests.catalog import access, queries
from backtests.playback import frames
from backtests.playback.run_data import (
    CACHE,
    PlaybackFull,
    RunData,
    RunNotFound,
    RunNotPlayable,
    Unplayable,
)


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


@require_safe
async def play(request: HttpRequest, run_id: str) -> HttpResponse:
    """The viewer: charts, running metrics, play, pause, speed presets and a scrubber."""
    if authentication.required():
        try:
            user = await authentication.authenticate(request)
        except authentication.BadCredentials:
            user = None
        if user is None or not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        found, owner_id = await queries.run_owner(run_id)
        if found and not access.may_read_run(user, owner_id):
            problem = f"run {run_id} is another user's"
            context = {"run_id": run_id, "status": None, "problem": problem}
            return render(request, "backtests/play.html", context, status=403)
    context = {
        "run_id": run_id,
        "status": "DONE",
        "bars": 0,
        "first": "",
        "last": "",
        "presets": [],
    }
    try:
        data = await CACHE.get(run_id)  # the socket that the page opens shares this load
    except RunNotFound:
        return render(request, "backtests/play.html", {**context, "status": None}, status=404)
    except RunNotPlayable as not_done:
        context["status"] = not_done.status  # the page waits for DONE on the socket
    except PlaybackFull as full:
        return render(
            request, "backtests/play.html", {**context, "status": None, "problem": full}, status=503
        )
    except Unplayable as mismatch:
        return render(
            request,
            "backtests/play.html",
            {**context, "status": None, "problem": mismatch},
            status=409,
        )
    else:
        context.update(
            bars=data.bars,
            first=frames.iso(data.ts[0]),
            last=frames.iso(data.ts[-1]),
            presets=speed_presets(data),
        )
    return render(request, "backtests/play.html", context)
