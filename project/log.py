"""Logging: JSON lines for machines, a console format for people, and request context.

`LOG_FORMAT=json` (the default outside `make start-backend`) writes one JSON object per
line. `request_id` (HTTP) and `backtest_id` (WebSocket) come from context variables that
the request-id middleware and the consumer set, so every line logged while handling a
request or a socket carries them.
"""

import contextvars
import logging
from datetime import UTC, datetime

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
backtest_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "backtest_id", default=None
)


class ContextFilter(logging.Filter):
    """Copy the request and backtest ids of the current context onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.backtest_id = backtest_id.get()
        return True


class ClientFaultFilter(logging.Filter):
    """Log a server's report of a client's malformed frame as one INFO line, no traceback.

    uvicorn logs invalid UTF-8 in a client's text frame at ERROR with a traceback, then
    closes the socket with 1007 as it should: any client could fill the error log at will.
    The fault is the client's, so it is one INFO line; every other record passes as it is.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UnicodeDecodeError):
            record.msg = f"{record.getMessage()} Closed with 1007: {record.exc_info[1]}"
            record.args = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, ids when set, exc when any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in ("request_id", "backtest_id"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()
