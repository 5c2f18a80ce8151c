"""A DONE run's arrays for an HTTP view (the stream, the bars window), or the error
response that says why not: one mapping of the cache's refusals to the API's codes."""

from django.http import HttpRequest, HttpResponse

from accounts.authentication import required
from backtests.catalog.rest import error_response
from backtests.catalog.views import refuse_unreadable
from backtests.errors import ErrorCode
from backtests.playback.run_data import (
    CACHE,
    PlaybackFull,
    RunData,
    RunNotFound,
    RunNotPlayable,
    Unplayable,
)


async def run_data_or_error(
    request: HttpRequest, run_id: str, not_done: ErrorCode, needs: str
) -> RunData | HttpResponse:
    """The run's arrays, or the error: 401/403 under AUTH_MODE=required, 404, `not_done`
    for a run that is not DONE (the message says it `needs` DONE), 409, 503 BUSY."""
    if required():
        refused = await refuse_unreadable(request, run_id)
        if refused is not None:
            return refused
    try:
        return await CACHE.get(run_id)
    except RunNotFound:
        return error_response(ErrorCode.RUN_NOT_FOUND, f"no run {run_id}")
    except RunNotPlayable as waiting:
        return error_response(
            not_done, f"run {run_id} is {waiting.status}: {needs}", {"status": waiting.status}
        )
    except Unplayable as unplayable:
        return error_response(unplayable.code, str(unplayable))
    except PlaybackFull as full:
        response = error_response(ErrorCode.BUSY, str(full))
        response["Retry-After"] = "10"
        return response
