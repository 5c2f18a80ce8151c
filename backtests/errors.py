"""The platform's error codes: one table for REST envelopes and WebSocket `err` frames.

docs/api/error-codes.md lists the same codes; keep the two in step.
"""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """A machine-readable error code, shared by REST and WebSocket errors."""

    VALIDATION = "VALIDATION"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    CONFLICT = "CONFLICT"
    IDP_CONFLICT = "IDP_CONFLICT"
    RUN_NOT_FOUND = "RUN_NOT_FOUND"
    DATASET_NOT_FOUND = "DATASET_NOT_FOUND"
    SWEEP_NOT_FOUND = "SWEEP_NOT_FOUND"
    BARS_MISMATCH = "BARS_MISMATCH"
    ARTIFACTS_MISSING = "ARTIFACTS_MISSING"
    RANGE = "RANGE"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    BUSY = "BUSY"
    INTERNAL = "INTERNAL"

    @property
    def http_status(self) -> int:
        """The HTTP status a REST response with this code carries."""
        return HTTP_STATUS[self]


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION: 422,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.IDP_CONFLICT: 409,
    ErrorCode.RUN_NOT_FOUND: 404,
    ErrorCode.DATASET_NOT_FOUND: 404,
    ErrorCode.SWEEP_NOT_FOUND: 404,
    ErrorCode.BARS_MISMATCH: 409,
    ErrorCode.ARTIFACTS_MISSING: 409,
    ErrorCode.RANGE: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.HEADERS_TOO_LARGE: 431,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BUSY: 503,
    ErrorCode.INTERNAL: 500,
}


# An error is never much larger than a page, whatever the request: a body of 60,000 bad
# fields is answered with the first MAX_DETAILS of them and their count.
MAX_DETAILS = 20
MAX_KEY_CHARS = 100  # a field name is the client's own text: echo a prefix
MAX_TEXT_CHARS = 500


def clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """`text`, cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def bounded(details: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The first MAX_DETAILS entries of `details`, keys and texts clipped; and how many
    entries there were (lists inside are cut the same way)."""
    kept = {}
    for key, value in list(details.items())[:MAX_DETAILS]:
        if isinstance(value, str):
            value = clip(value)
        elif isinstance(value, list):
            value = value[:MAX_DETAILS]
        kept[clip(str(key), MAX_KEY_CHARS)] = value
    return kept, len(details)


def error_body(message: str, details: dict[str, Any] | None) -> dict[str, Any]:
    """The common part of REST and socket errors, with `truncated` when details were cut."""
    kept, total = bounded(details or {})
    body: dict[str, Any] = {"message": clip(message), "details": kept}
    longest = max((len(v) for v in (details or {}).values() if isinstance(v, list)), default=0)
    if total > len(kept) or longest > MAX_DETAILS:
        body["truncated"] = {"shown": MAX_DETAILS, "total": max(total, longest)}
    return body


def rest_error(code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> dict:
    """The REST error envelope: {"error": {"code", "message", "details"}}, and
    `"truncated": {"shown", "total"}` when there were more than MAX_DETAILS problems."""
    return {"error": {"code": code.value, **error_body(message, details)}}
