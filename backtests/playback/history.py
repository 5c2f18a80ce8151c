"""GET /backtests/<id>/bars?from=A&to=B&max=M: a window of a DONE run's bars for a chart,
so that a viewer that seeks can draw what comes before the new position (and a page can
draw a run without playing it). Read from the run's arrays in the playback cache.

Bars A..B-1 are grouped into at most M candles of equal bar counts (the last may hold
fewer): each has its last bar's time, the group's open, high, low, close and volume, and
the equity and position after it; the window's orders come with the bar time of each.
"""

from collections.abc import Mapping

import numpy as np
from django.http import HttpRequest, HttpResponse

from backtests.catalog.rest import api_view, json_response
from backtests.catalog.validation import ValidationError, decimal
from backtests.errors import ErrorCode
from backtests.playback.frames import iso
from backtests.playback.run_access import run_data_or_error
from backtests.playback.run_data import RunData

DEFAULT_CANDLES = 2000
MAX_CANDLES = 10_000
FIELDS = frozenset({"from", "to", "max"})


def parse_window(query: Mapping[str, list[str]], bars: int) -> tuple[int, int, int]:
    """(first bar, end bar, most candles) from ?from=&to=&max= (defaults: every bar)."""
    problems: dict[str, str] = {}
    for name in sorted(set(query) - FIELDS):
        problems[name] = "unknown query parameter"
    values = {}
    for name in FIELDS & set(query):
        if len(query[name]) != 1:
            problems[name] = "give at most once"
            continue
        number = decimal(query[name][0])
        if number is None:
            problems[name] = "must be a whole number"
        else:
            values[name] = number
    first, end = values.get("from", 0), min(values.get("to", bars), bars)
    most = values.get("max", DEFAULT_CANDLES)
    if "from" not in problems and first >= bars:
        problems["from"] = f"must be below the run's {bars} bars"
    elif "to" not in problems and end <= first:
        problems["to"] = "must be greater than from"
    if "max" not in problems and not 1 <= most <= MAX_CANDLES:
        problems["max"] = f"must be from 1 to {MAX_CANDLES}"
    if problems:
        raise ValidationError("invalid query parameters", problems)
    return first, end, most


def window(data: RunData, first: int, end: int, most: int) -> dict:
    """The candles and orders of bars first..end-1 (arrays in, arrays out)."""
    size = -(-(end - first) // most)  # bars per candle, rounded up
    starts = np.arange(first, end, size)
    lasts = np.minimum(starts + size, end) - 1
    fills = np.flatnonzero((data.fill_bar >= first) & (data.fill_bar < end))
    return {
        "from": first,
        "to": end,
        "bars_per_candle": int(size),
        "ts": [iso(t) for t in data.ts[lasts].tolist()],
        "i": lasts.tolist(),
        "open": data.open[starts].tolist(),
        "high": np.maximum.reduceat(data.high[first:end], starts - first).tolist(),
        "low": np.minimum.reduceat(data.low[first:end], starts - first).tolist(),
        "close": data.close[lasts].tolist(),
        "volume": np.add.reduceat(data.volume[first:end], starts - first).tolist(),
        "equity": data.equity[lasts].tolist(),
        "position": data.position[lasts].tolist(),
        "orders": [
            {
                "ts": iso(int(data.ts[data.fill_bar[j]])),
                "i": int(data.fill_bar[j]),
                "side": data.fill_side[j],
                "qty": float(data.fill_qty[j]),
                "price": float(data.fill_price[j]),
                "fee": float(data.fill_fee[j]),
            }
            for j in fills.tolist()
        ],
    }


@api_view("GET")
async def bars(request: HttpRequest, run_id: str) -> HttpResponse:
    """GET /backtests/<id>/bars?from=&to=&max=: candles of a window of the run's bars."""
    data = await run_data_or_error(
        request, run_id, ErrorCode.CONFLICT, "its bars are charted once it is DONE"
    )
    if isinstance(data, HttpResponse):
        return data
    first, end, most = parse_window(dict(request.GET.lists()), data.bars)
    return json_response(window(data, first, end, most))
