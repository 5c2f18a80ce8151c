"""GET /backtests/<id>/stream: the socket's frames as Server-Sent Events, for clients that
cannot open a WebSocket (docs/api/ws-protocol.md#server-sent-events).

`event: frame` with `id: I` (the frame's last bar) and the frame's JSON as data, on the
same clock as the socket; `event: end` after the last bar; a `: hb` comment when no frame
was sent for a heartbeat interval. `Last-Event-ID` resumes after that bar. Errors before
the stream starts are the JSON envelope.
"""

import contextlib
from collections.abc import AsyncIterator, Mapping

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from accounts import quotas
from backtests.catalog.rest import api_view, client_key, error_response, rate_limited
from backtests.catalog.validation import ValidationError, decimal
from backtests.errors import ErrorCode
from backtests.playback import clock, frames, protocol
from backtests.playback.run_access import run_data_or_error
from backtests.playback.run_data import CACHE, RunData
from project import metrics

QUERY_FIELDS = frozenset({"speed", "from"})


def parse_query(query: Mapping[str, list[str]], last_event_id: str | None) -> tuple:
    """(speed or None, position: a bar index, a UTC time string, or None)."""
    problems: dict[str, str] = {}
    for name in sorted(set(query) - QUERY_FIELDS):
        problems[name] = "unknown query parameter"
    for name, values in query.items():
        if name in QUERY_FIELDS and len(values) != 1:
            problems[name] = "give at most once"
    speed = position = None
    if "speed" in query and "speed" not in problems:
        try:
            speed = float(query["speed"][0])
        except ValueError:
            speed = None
        if speed is None or protocol.speed_problems(speed):
            problems["speed"] = "must be a finite number greater than 0"
    if last_event_id is not None:
        last = decimal(last_event_id)
        if last is None:
            problems["Last-Event-ID"] = "must be the id of a frame: a bar index"
        else:
            position = last + 1  # resume after that bar
    elif "from" in query and "from" not in problems:
        raw = query["from"][0]
        index = decimal(raw)
        position = index if index is not None else raw
        found = protocol.seek_problems(position)
        if found:
            problems["from"] = found["pos"].replace("frame index", "bar index")
    if problems:
        raise ValidationError("invalid stream request", problems)
    return speed, position


class EventStream(StreamingHttpResponse):
    """The stream's response: its quota slot is given back when Django closes it, which it
    does however the request ends (the events' own clean-up may never run if the client
    left before the first event)."""

    def __init__(self, content: AsyncIterator[str], slot: quotas.Slot) -> None:
        super().__init__(content, content_type="text/event-stream")
        self.slot = slot

    def close(self) -> None:
        self.slot.release()
        super().close()


async def events(
    data: RunData, start: int, speed: float, slot: quotas.Slot | None = None
) -> AsyncIterator[str]:
    """The stream's text: frames on the clock, heartbeats between, then the end.

    A client that leaves cancels it (Django's handler does, on the disconnect): the gauge
    of open streams shows that nothing is left running.
    """
    metrics.SSE_OPEN.inc()
    CACHE.hold(data)  # counted against PLAYBACK_CACHE_BYTES while the stream is open
    try:
        dropped = 0
        ticks = clock.schedule(data, start, speed, settings.WS_HEARTBEAT_INTERVAL)
        async with contextlib.aclosing(ticks):  # it leaves its phase however this ends
            async for due in ticks:
                if due is None:
                    yield ": hb\n\n"
                    continue
                first, last, missed = due
                dropped += missed
                text = frames.frame(data, first, last, dropped)
                yield f"event: frame\nid: {last}\ndata: {text}\n\n"
        yield "event: end\ndata: {}\n\n"
    finally:
        CACHE.release(data.run_id)
        metrics.SSE_OPEN.dec()
        if slot is not None:
            slot.release()


@api_view("GET")
async def stream(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET /backtests/<id>/stream?speed=S&from=P: Server-Sent Events of the run's frames."""
    speed, position = parse_query(dict(request.GET.lists()), request.headers.get("Last-Event-ID"))
    data = await run_data_or_error(
        request, run_id, ErrorCode.RANGE, "only a DONE run can be played"
    )
    if isinstance(data, HttpResponse):
        return data
    start = 0 if position is None else data.bar_at(position)
    if start >= data.bars:
        return error_response(
            ErrorCode.RANGE,
            f"position {position} is past the run's last bar",
            frames.range_details(data),
        )
    try:
        slot = quotas.STREAMS.take(
            client_key(request), settings.SSE_MAX_PER_CLIENT, settings.SSE_MAX_CONNECTIONS
        )
    except quotas.OverQuota as over:
        return rate_limited(over)
    response = EventStream(events(data, start, speed or data.speed, slot), slot)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
