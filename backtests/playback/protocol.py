"""The playback WebSocket's wire format: parse and validate client frames, build replies.

This module knows nothing about Channels; docs/api/ws-protocol.md is its contract.
Every failure is a `ProtocolError`, which becomes an `err` frame; nothing else is raised.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from backtests.errors import ErrorCode, error_body

CTRL_COMMANDS = ("pause", "play", "seek", "speed")
MESSAGE_TYPES = ("ctrl", "hb")

HEARTBEAT_FRAME = '{"t":"hb"}'

# Close code for a client that kept flooding past the rate limit (4000-4999 are the
# application's; servers cannot send 1008 from an ASGI app).
FLOOD_CLOSE_CODE = 4008

# ISO-8601 date and time in UTC; datetime.fromisoformat then rejects impossible dates.
UTC_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|\+00:00)"
)

_MISSING = object()


class ProtocolError(Exception):
    """A client frame the protocol refuses; `frame()` is the `err` reply."""

    def __init__(
        self, msg: str, details: dict[str, Any], code: ErrorCode = ErrorCode.VALIDATION
    ) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def frame(self) -> str:
        """The `err` frame's JSON text."""
        return err_frame(self.code, self.msg, self.details)


@dataclass(frozen=True, slots=True)
class Ctrl:
    """A valid control message; `text` is the frame as the client sent it."""

    cmd: str
    message: dict[str, Any]
    text: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A client heartbeat; it needs no reply."""


Message = Ctrl | Heartbeat


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back for one frame, and the error code when it is an `err` frame."""

    text: str
    error: ErrorCode | None = None
    ctrl: Ctrl | None = None  # a valid ctrl message: its effect follows the echo


def err_frame(code: ErrorCode, msg: str, details: dict[str, Any]) -> str:
    """Build an `err` frame: {"t":"err","code","msg","details"} (and `truncated`, as REST)."""
    body = error_body(msg, details)
    frame = {"t": "err", "code": code.value, "msg": body.pop("message"), **body}
    return orjson.dumps(frame).decode()


def internal_error() -> Reply:
    """The `err` reply when the server fails on a frame (no internals leak)."""
    return Reply(
        err_frame(ErrorCode.INTERNAL, "internal error while handling the message", {}),
        ErrorCode.INTERNAL,
    )


def status_frame(status: str) -> str:
    """A run's status, sent to sockets that wait for their run to finish."""
    return orjson.dumps({"t": "status", "status": status}).decode()


def rate_limited_frame(rate: float, burst: float, dropped: int) -> str:
    """The `err` frame that tells a client its messages are being dropped."""
    return err_frame(
        ErrorCode.RATE_LIMITED,
        f"too many messages: the limit is {rate:g} a second, in bursts of up to {burst:g};"
        " messages over it are dropped",
        {"limit_per_second": rate, "burst": burst, "dropped": dropped},
    )


def reply_to(text_data: str | None, bytes_data: bytes | None, max_bytes: int) -> Reply | None:
    """The reply to one client frame: the echoed ctrl text, an `err` frame, or None."""
    try:
        message = parse_frame(text_data, bytes_data, max_bytes)
    except ProtocolError as error:
        return Reply(error.frame(), error.code)
    return Reply(message.text, ctrl=message) if isinstance(message, Ctrl) else None


def parse_frame(text_data: str | None, bytes_data: bytes | None, max_bytes: int) -> Message:
    """Parse and validate one WebSocket frame, text or binary."""
    if text_data is None:
        size = len(bytes_data or b"")
        raise ProtocolError(
            "binary frames are not accepted; send each message as a JSON text frame",
            {"frame": f"binary frame of {size} bytes"},
        )
    return parse_text(text_data, max_bytes)


def parse_text(text: str, max_bytes: int) -> Message:
    """Parse and validate one text frame of at most `max_bytes` UTF-8 bytes."""
    check_size(text, max_bytes)
    if not text:
        raise ProtocolError("empty frame; send one JSON object", {"frame": "empty"})
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("frame is not valid JSON", {"frame": str(exc)}) from None
    return validate_message(obj, text)


def check_size(text: str, max_bytes: int) -> None:
    """Refuse a frame over `max_bytes` of UTF-8 before it is parsed."""
    # Every character is 1 to 4 bytes, so only frames near the limit need encoding.
    if len(text) * 4 <= max_bytes:
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError(
            f"frame is {size} bytes, over the {max_bytes}-byte limit; it was not parsed",
            {"size": size, "limit": max_bytes},
        )


def validate_message(obj: Any, text: str) -> Message:
    """Validate a decoded JSON value, parsed from `text`, as a client message."""
    if not isinstance(obj, dict):
        raise ProtocolError(
            "a message must be a JSON object", {"frame": f"got a JSON {json_type(obj)}"}
        )
    kind = obj.get("t", _MISSING)
    if kind is _MISSING:
        raise ProtocolError("message has no type", {"t": "required"})
    if not isinstance(kind, str):
        raise ProtocolError("message type must be a string", {"t": f"got {json_type(kind)}"})
    if kind == "ctrl":
        return validate_ctrl(obj, text)
    if kind == "hb":
        return Heartbeat()
    raise ProtocolError(
        "unknown message type",
        {"t": f"unknown type {clip(kind)}; expected one of: {', '.join(MESSAGE_TYPES)}"},
    )


def validate_ctrl(obj: dict[str, Any], text: str) -> Ctrl:
    """Validate a `ctrl` message: its command and that command's argument."""
    cmd = obj.get("cmd", _MISSING)
    if cmd is _MISSING:
        problems = {"cmd": "required"}
    elif not isinstance(cmd, str) or cmd not in CTRL_COMMANDS:
        problems = {"cmd": f"must be one of: {', '.join(CTRL_COMMANDS)}"}
    elif cmd == "seek":
        problems = seek_problems(obj.get("pos", _MISSING))
    elif cmd == "speed":
        problems = speed_problems(obj.get("val", _MISSING))
    else:
        problems = {}
    if problems:
        raise ProtocolError("invalid ctrl message", problems)
    return Ctrl(cmd, obj, text)


def seek_problems(pos: Any) -> dict[str, str]:
    """What is wrong with a seek's `pos`: a UTC timestamp or a non-negative frame index."""
    expected = "must be an ISO-8601 UTC timestamp string or a non-negative integer frame index"
    if pos is _MISSING:
        return {"pos": "required"}
    if isinstance(pos, bool):
        return {"pos": expected}
    if isinstance(pos, int):
        return {"pos": "frame index must not be negative"} if pos < 0 else {}
    if isinstance(pos, str):
        if not UTC_TIMESTAMP.fullmatch(pos):
            return {"pos": f"{expected}, like 2023-03-01T14:30:00Z"}
        try:
            datetime.fromisoformat(pos)
        except ValueError as exc:
            return {"pos": f"not a valid timestamp: {exc}"}
        return {}
    return {"pos": expected}


def speed_problems(val: Any) -> dict[str, str]:
    """What is wrong with a speed's `val`: a finite number greater than 0."""
    if val is _MISSING:
        return {"val": "required"}
    if isinstance(val, bool) or not isinstance(val, int | float):
        return {"val": "must be a number"}
    if isinstance(val, float) and not math.isfinite(val):
        return {"val": "must be finite"}
    if val <= 0:
        return {"val": "must be greater than 0"}
    return {}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def clip(text: str, limit: int = 40) -> str:
    """Quote a client-supplied string for an error message, cut to `limit` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
