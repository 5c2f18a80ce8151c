"""Playback frames: the wire format of what the server plays (docs/api/ws-protocol.md).

Plain functions over a run's arrays, shared by the WebSocket and the SSE stream.
"""

from datetime import date

import numpy as np
import orjson

from backtests.playback.run_data import RunData

FPS = 30  # frames a second, at most
MAX_SPEED = 10_000_000  # seconds of market time per second; faster plays at this
END_FRAME = '{"t":"end"}'
# Frame texts kept per run, least recently used out: viewers who started a run together
# (or at one speed from one position) play the same frames, a few seconds apart at most.
FRAME_TEXTS = 1024
_DROPPED_ZERO = "0}"


_DAYS: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DDT" (a run spans a few hundred)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def iso(ts_ns: int) -> str:
    """A bar time as ISO 8601 UTC, to the second: 2023-03-01T14:30:00Z (on the frame path:
    integer arithmetic and a cache of days, twice as fast as numpy's formatting)."""
    day, seconds = divmod(int(ts_ns) // 1_000_000_000, 86_400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = f"{date.fromordinal(EPOCH_ORDINAL + day).isoformat()}T"
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def bars_per_tick(speed: float, bar_seconds: float) -> float:
    """How many bars each 1/FPS tick makes due at `speed` (capped at MAX_SPEED)."""
    return min(speed, MAX_SPEED) / FPS / bar_seconds


def frame_dict(data: RunData, first: int, last: int, dropped: int) -> dict:
    """The frame covering bars first..last (inclusive)."""
    lo, hi = np.searchsorted(data.fill_bar, (first, last + 1))
    orders = [
        {
            "ts": iso(data.ts[data.fill_bar[j]]),
            "side": data.fill_side[j],
            "qty": float(data.fill_qty[j]),
            "price": float(data.fill_price[j]),
            "fee": float(data.fill_fee[j]),
        }
        for j in range(lo, hi)
    ]
    return {
        "t": "frame",
        "i": last,
        "n": last - first + 1,
        "ts": iso(data.ts[last]),
        "ohlc": {
            "o": float(data.open[first]),
            "h": float(data.high[first : last + 1].max()),
            "l": float(data.low[first : last + 1].min()),
            "c": float(data.close[last]),
            "v": float(data.volume[first : last + 1].sum()),
        },
        "orders": orders,
        "equity": float(data.equity[last]),
        "metrics": {
            "total_return": float(data.total_return[last]),
            "max_drawdown": float(data.max_drawdown[last]),
        },
        "dropped": dropped,
    }


def frame(data: RunData, first: int, last: int, dropped: int) -> str:
    """The frame's JSON text: built once per (first, last) and run, shared by every socket
    that plays the same bars (only `dropped`, the last key, is the socket's own)."""
    key = (first, last)
    texts = data.frame_texts
    head = texts.get(key)
    if head is None:
        whole = orjson.dumps(frame_dict(data, first, last, 0)).decode()
        head = texts[key] = whole[: -len(_DROPPED_ZERO)]
        if len(texts) > FRAME_TEXTS:
            texts.popitem(last=False)
    else:
        texts.move_to_end(key)
    return f"{head}{dropped}}}"


def range_details(data: RunData) -> dict:
    """What a RANGE error says about a run's bars."""
    return {"bars": data.bars, "first": iso(data.ts[0]), "last": iso(data.ts[-1])}
