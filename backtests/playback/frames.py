"""Playback frames: the wire format of what the server plays (docs/api/ws-protocol.md).

Plain functions over a run's arrays, shared by the WebSocket and the SSE stream.
"""

import numpy as np
import orjson

from backtests.playback.run_data import RunData

FPS = 30  # frames a second, at most
MAX_SPEED = 10_000_000  # seconds of market time per second; faster plays at this
END_FRAME = '{"t":"end"}'


def iso(ts_ns: int) -> str:
    """A bar time as ISO 8601 UTC, to the second: 2023-03-01T14:30:00Z."""
    return f"{np.datetime_as_string(np.datetime64(int(ts_ns), 'ns'), unit='s')}Z"


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
    """The frame's JSON text."""
    return orjson.dumps(frame_dict(data, first, last, dropped)).decode()


def range_details(data: RunData) -> dict:
    """What a RANGE error says about a run's bars."""
    return {"bars": data.bars, "first": iso(data.ts[0]), "last": iso(data.ts[-1])}
