"""A WebSocket consumer base whose per-message path costs no task and no thread hop.

Channels' AsyncConsumer multiplexes the client and the channel layer with
`await_many_dispatch`, which creates a task and an `asyncio.wait` for every message, and
closes stale database connections through a thread hop before each one. Profiled under
echo load, the two were a third of the server's CPU. `LeanConsumer` keeps the same
semantics (one message handled at a time, from either source, in arrival order) with
the client read in the consumer's own task and the layer read by one long-lived task.

However the socket ends (a close frame, a dropped connection, a send that fails because
the client is already gone, a handler that raises, a cancellation by the server),
`clean_up()` runs once, from one `finally`: it leaves the groups and calls `disconnect()`,
where a subclass releases every per-socket resource (timers, tasks, subscriptions).

Database rule: handlers of a LeanConsumer get no automatic `close_old_connections`.
Database work in a consumer goes through `channels.db.database_sync_to_async`, which
closes stale connections before and after each call (docs/architecture.md).
"""

import asyncio
import contextlib
import functools

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

# What a server raises when the application sends to a connection that is already gone.
# The ASGI spec asks for a subclass of OSError (uvicorn's ClientDisconnected); daphne raises
# autobahn's Disconnected, a RuntimeError, and uvicorn a RuntimeError for a send after the
# connection closed. Our own messages are well-formed, so a send fails for no other reason.
PEER_GONE_ERRORS = (OSError, RuntimeError)

# The close code recorded when the client left without a close frame reaching us.
ABNORMAL_CLOSURE = 1006


class PeerGone(StopConsumer):
    """A send failed because the client is gone: a disconnect, not an error."""


class LeanConsumer(AsyncJsonWebsocketConsumer):
    """AsyncJsonWebsocketConsumer with a cheaper message loop (see the module docstring)."""

    async def __call__(self, scope, receive, send) -> None:
        """Run the consumer until the socket ends, then run the clean-up once."""
        self.scope = scope
        self.server_send = send
        self.base_send = self.send_or_gone
        self.close_code = ABNORMAL_CLOSURE
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.dispatch_lock: asyncio.Lock | None = None
        try:
            if self.channel_layer is None:
                await self.pump(receive)
            else:
                await self.pump_both(receive)
        except StopConsumer:  # a disconnect, or PeerGone
            pass
        finally:
            await self.clean_up()

    async def send_or_gone(self, message: dict) -> None:
        """Send a message to the server; raise PeerGone if the client is already gone."""
        try:
            await self.server_send(message)
        except PEER_GONE_ERRORS as exc:
            raise PeerGone(f"client gone: {exc!r}") from exc

    async def clean_up(self) -> None:
        """The one clean-up path: leave any groups, then disconnect() with the close code."""
        if self.channel_layer is not None:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(self.close_code)

    async def pump_both(self, receive) -> None:
        """Pump the client and the channel layer until either stops or fails."""
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        # Two sources: handlers still run one at a time, whichever source a message is from.
        self.dispatch_lock = asyncio.Lock()
        pumps = [
            asyncio.create_task(self.pump(receive)),
            asyncio.create_task(self.pump(self.channel_receive)),
        ]
        try:
            # Waits once per connection, not per message.
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            for pump in done:
                raise pump.exception()
        finally:
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError, StopConsumer):
                    await pump

    async def pump(self, source) -> None:
        """Dispatch every message from `source`, in order (under the lock, if two sources)."""
        while True:
            message = await source()
            if self.dispatch_lock is None:
                await self.dispatch(message)
            else:
                async with self.dispatch_lock:
                    await self.dispatch(message)

    async def dispatch(self, message: dict) -> None:
        """Run the handler for a message's type (no database clean-up: see the rule)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict) -> None:
        """Record the close code and stop: clean_up() runs on the way out."""
        self.close_code = message.get("code", ABNORMAL_CLOSURE)
        raise StopConsumer()
