"""The platform's error codes: one table for REST envelopes and WebSocket `err` frames.

docs/api/error-codes.md lists the same codes; keep the two in step.
"""

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """A machine-readable error code, shared by REST and WebSocket errors."""

    VALIDATION = "VALIDATION"
    CONFLICT = "CONFLICT"
    IDP_CONFLICT = "IDP_CONFLICT"
    RUN_NOT_FOUND = "RUN_NOT_FOUND"
    DATASET_NOT_FOUND = "DATASET_NOT_FOUND"
    BARS_MISMATCH = "BARS_MISMATCH"
    RANGE = "RANGE"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
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
    ErrorCode.CONFLICT: 409,
    ErrorCode.IDP_CONFLICT: 409,
    ErrorCode.RUN_NOT_FOUND: 404,
    ErrorCode.DATASET_NOT_FOUND: 404,
    ErrorCode.BARS_MISMATCH: 409,
    ErrorCode.RANGE: 400,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BUSY: 503,
    ErrorCode.INTERNAL: 500,
}


def rest_error(code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> dict:
    """The REST error envelope: {"error": {"code", "message", "details"}}."""
    return {"error": {"code": code.value, "message": message, "details": details or {}}}
