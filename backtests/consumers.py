"""The playback WebSocket consumer: transport only; the wire format lives in protocol.py."""

import asyncio
import contextlib
import logging
import time

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from backtests import protocol

logger = logging.getLogger(__name__)


class PlaybackConsumer(AsyncJsonWebsocketConsumer):
    """One viewer's socket for one backtest: validates ctrl messages and echoes them.

    Database rule: Channels closes stale database connections, through a thread hop,
    before every message and after disconnect. This consumer skips that, because its
    handlers never touch the database. A handler that does must go through
    channels.db.database_sync_to_async, which does the same clean-up around each call.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backtest_id = ""
        self.opened_at = time.monotonic()
        self.messages_in = 0
        self.messages_out = 0
        self.heartbeat: asyncio.Task | None = None
        self.max_message_bytes = settings.WS_MAX_MESSAGE_BYTES

    async def dispatch(self, message: dict) -> None:
        """Run the handler for a message's type (without the per-message DB clean-up)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict) -> None:
        """Leave any groups, run disconnect() and stop (without the DB clean-up)."""
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def connect(self) -> None:
        """Accept the socket and start its heartbeat."""
        self.backtest_id = self.scope["url_route"]["kwargs"]["backtest_id"]
        self.opened_at = time.monotonic()
        await self.accept()
        self.heartbeat = asyncio.create_task(self.send_heartbeats(settings.WS_HEARTBEAT_INTERVAL))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer one client frame; an error in here never closes the socket."""
        self.messages_in += 1
        try:
            reply = protocol.reply_to(text_data, bytes_data, self.max_message_bytes)
        except Exception:
            # protocol.reply_to turns every bad frame into an err frame; reaching this is a bug.
            logger.exception("error handling a frame on backtest %s", self.backtest_id)
            reply = protocol.internal_error_frame()
        if reply is not None:
            await self.send_text(reply)

    async def send_text(self, text: str) -> None:
        """Send one text frame and count it."""
        self.messages_out += 1
        await self.base_send({"type": "websocket.send", "text": text})

    async def send_heartbeats(self, interval: float) -> None:
        """Send {"t":"hb"} every `interval` seconds, the first one `interval` after opening."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + interval
        try:
            while True:
                await asyncio.sleep(next_beat - loop.time())
                await self.send_text(protocol.HEARTBEAT_FRAME)
                # Keep to the schedule, but never send a burst to catch up after a stall.
                next_beat = max(next_beat + interval, loop.time())
        except Exception:
            logger.exception("heartbeat stopped on backtest %s", self.backtest_id)

    async def disconnect(self, code: int) -> None:
        """Stop the heartbeat and log one line about the connection."""
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat
        logger.info(
            "websocket closed backtest_id=%s code=%s duration_s=%.3f messages_in=%d "
            "messages_out=%d",
            self.backtest_id,
            code,
            time.monotonic() - self.opened_at,
            self.messages_in,
            self.messages_out,
        )
