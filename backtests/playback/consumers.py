"""The playback WebSocket consumer: transport only; the wire format lives in protocol.py."""

import asyncio
import logging
import re
import time

from django.conf import settings

from accounts.authentication import required
from accounts.socket_auth import PROTOCOL
from backtests.catalog import access, queries
from backtests.playback import protocol, run_watch
from backtests.playback.consumer_base import LeanConsumer, PeerGone
from backtests.playback.limits import RateLimiter, Verdict
from backtests.playback.player import Player
from project import log, metrics

logger = logging.getLogger(__name__)
# Run ids are ULIDs: a socket for any other id has no run to look up.
RUN_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


class PlaybackConsumer(LeanConsumer):
    """One viewer's socket for one backtest: validates ctrl messages and echoes them."""

    # No channel-layer subscription per socket: it would cost every idle socket a task and
    # a queue. A socket waiting for its run to finish is served by the process's shared
    # watch (run_watch.py) instead.
    channel_layer_alias = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backtest_id = ""
        self.opened_at = time.monotonic()
        self.messages_in = 0
        self.messages_out = 0
        self.heartbeat: asyncio.TimerHandle | None = None
        self.heartbeat_send: asyncio.Task | None = None
        self.heartbeat_interval = settings.WS_HEARTBEAT_INTERVAL
        self.next_beat = 0.0
        self.max_message_bytes = settings.WS_MAX_MESSAGE_BYTES
        self.limiter: RateLimiter | None = None
        self.accepted = False
        self.player: Player | None = None
        self.status_lookup: asyncio.Task | None = None
        self.status_send: asyncio.Task | None = None
        self.watching = False

    async def connect(self) -> None:
        """Accept the socket (unless it is another user's run) and start its heartbeat."""
        self.backtest_id = self.scope["url_route"]["kwargs"]["backtest_id"]
        # Every line logged from this socket's task (and its heartbeat timer) carries it.
        log.backtest_id.set(self.backtest_id)
        self.opened_at = time.monotonic()
        is_run_id = RUN_ID.fullmatch(self.backtest_id) is not None
        if required() and is_run_id and not await self.may_read():
            logger.info("websocket refused: backtest %s is another user's", self.backtest_id)
            metrics.WS_REFUSED.labels("forbidden").inc()
            await self.close()  # before accept: the server answers the handshake 403
            return
        # A client that offers subprotocols (a token entry among them) must get one back.
        offered = self.scope.get("subprotocols") or ()
        await self.accept(PROTOCOL if PROTOCOL in offered else None)
        self.accepted = True
        metrics.WS_OPENED.inc()
        metrics.WS_OPEN.inc()
        loop = asyncio.get_running_loop()
        if settings.WS_RATE_LIMIT > 0:
            self.limiter = RateLimiter(
                rate=settings.WS_RATE_LIMIT,
                burst=settings.WS_RATE_BURST,
                now=loop.time(),
                flood_seconds=settings.WS_FLOOD_CLOSE_SECONDS,
            )
        self.next_beat = loop.time() + self.heartbeat_interval
        self.heartbeat = loop.call_at(self.next_beat, self.beat)
        self.player = Player(self.backtest_id, self.send_text, is_run_id=is_run_id)
        if is_run_id:
            self.status_lookup = loop.create_task(self.watch_status())

    async def may_read(self) -> bool:
        """Whether the socket's user may read its run (a run that does not exist: yes, and
        the socket says so on play, as under AUTH_MODE=off)."""
        found, owner_id = await queries.run_owner(self.backtest_id)
        return not found or access.may_read_run(self.scope["user"], owner_id)

    async def watch_status(self) -> None:
        """If the run is QUEUED or RUNNING: say so, then send each new status as it moves."""
        try:
            status = await run_watch.lookup_status(self.backtest_id)
            if status not in run_watch.WAITING:
                return
            self.watching = True
            await run_watch.WATCH.watch(self.backtest_id, self.on_status, status)
            await self.send_text(protocol.status_frame(status))
        except PeerGone:
            pass  # the server delivers the disconnect; the clean-up follows
        except Exception:
            logger.exception("status of backtest %s not watched", self.backtest_id)

    def on_status(self, status: str) -> None:
        """A new status of the run (from the watch): sent in a task of this socket's, so
        that a slow client never holds the watch up."""
        self.status_send = asyncio.get_running_loop().create_task(
            self.send_text(protocol.status_frame(status))
        )
        self.status_send.add_done_callback(self.status_sent)

    def status_sent(self, task: asyncio.Task) -> None:
        """Log a status that could not be sent for another reason than a gone client."""
        error = None if task.cancelled() else task.exception()
        if error is not None and not isinstance(error, PeerGone):
            logger.warning("status not sent on backtest %s: %r", self.backtest_id, error)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Answer one client frame; an error in here never closes the socket."""
        self.messages_in += 1
        metrics.WS_MESSAGES_IN.inc()
        if self.limiter is not None and await self.over_limit():
            return
        try:
            reply = protocol.reply_to(text_data, bytes_data, self.max_message_bytes)
        except Exception:
            # protocol.reply_to turns every bad frame into an err frame; reaching this is a bug.
            logger.exception("error handling a frame on backtest %s", self.backtest_id)
            reply = protocol.internal_error()
        if reply is None:
            return
        if reply.ctrl is not None:
            await self.control(reply)
            return
        if reply.error is not None:
            metrics.WS_ERRORS.labels(reply.error.value).inc()
        await self.send_text(reply.text)

    async def control(self, reply: protocol.Reply) -> None:
        """Echo a valid ctrl message, the acknowledgement, and apply it (player.py)."""
        try:
            await self.player.before_echo(reply.ctrl)
            await self.send_text(reply.text)
            await self.player.after_echo(reply.ctrl)
        except PeerGone:
            raise
        except Exception:
            logger.exception("error applying a ctrl message on backtest %s", self.backtest_id)
            metrics.WS_ERRORS.labels("INTERNAL").inc()
            await self.send_text(protocol.internal_error().text)

    async def over_limit(self) -> bool:
        """Apply the rate limit: whether this message is dropped (or the socket closed)."""
        verdict = self.limiter.check(asyncio.get_running_loop().time())
        if verdict is Verdict.ALLOW:
            return False
        if verdict is Verdict.WARN:
            metrics.WS_ERRORS.labels("RATE_LIMITED").inc()
            await self.send_text(
                protocol.rate_limited_frame(
                    self.limiter.rate, self.limiter.burst, self.limiter.dropped
                )
            )
        elif verdict is Verdict.CLOSE:
            logger.warning(
                "websocket flooding backtest_id=%s dropped=%d: closing with %d",
                self.backtest_id,
                self.limiter.dropped,
                protocol.FLOOD_CLOSE_CODE,
            )
            self.limiter = None  # nothing more to limit: the socket is closing
            await self.close(protocol.FLOOD_CLOSE_CODE, "rate limit exceeded")
        return True

    async def send_text(self, text: str) -> None:
        """Send one text frame and count it."""
        self.messages_out += 1
        metrics.WS_MESSAGES_OUT.inc()
        await self.base_send({"type": "websocket.send", "text": text})

    def beat(self) -> None:
        """Send a heartbeat now and schedule the next one.

        A timer per socket rather than a sleeping task: 10,000 idle sockets then cost
        10,000 timer handles, not 10,000 tasks with their coroutine frames.
        """
        loop = asyncio.get_running_loop()
        # Keep to the schedule, but never send a burst to catch up after a stall.
        self.next_beat = max(self.next_beat + self.heartbeat_interval, loop.time())
        self.heartbeat = loop.call_at(self.next_beat, self.beat)
        if self.heartbeat_send is not None and not self.heartbeat_send.done():
            # The last one is still waiting for the socket (a client that does not read,
            # under a server with backpressure): never queue more than one.
            return
        # Held, so that the task cannot be collected while the send is pending.
        self.heartbeat_send = loop.create_task(self.send_text(protocol.HEARTBEAT_FRAME))
        self.heartbeat_send.add_done_callback(self.heartbeat_sent)

    def heartbeat_sent(self, task: asyncio.Task) -> None:
        """Stop beating for a client that is gone; log a heartbeat that failed otherwise."""
        if task.cancelled() or task.exception() is None:
            return
        if isinstance(task.exception(), PeerGone):
            # The server delivers the disconnect to the consumer's task, whose clean-up
            # counts and logs the close; until then, nothing more is sent.
            self.stop_heartbeat()
            return
        logger.warning("heartbeat not sent on backtest %s: %r", self.backtest_id, task.exception())

    def stop_heartbeat(self) -> None:
        """Cancel the heartbeat timer and any heartbeat still being sent."""
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            self.heartbeat = None
        if self.heartbeat_send is not None:
            # A no-op when it is the task running this (done already) or finished.
            self.heartbeat_send.cancel()
            self.heartbeat_send = None

    async def disconnect(self, code: int) -> None:
        """Release every per-socket resource and log one line; runs once per socket.

        Called by the base's single clean-up path however the socket ended. Anything a
        socket starts (the heartbeat today; a frame producer, a subscription) stops here.
        """
        self.stop_heartbeat()
        if self.player is not None:
            self.player.stop()
        for task in (self.status_lookup, self.status_send):
            if task is not None:
                task.cancel()
        if self.watching:
            run_watch.WATCH.unwatch(self.backtest_id, self.on_status)
            self.watching = False
        if self.accepted:
            self.accepted = False
            metrics.WS_OPEN.dec()
        logger.info(
            "websocket closed backtest_id=%s code=%s duration_s=%.3f messages_in=%d "
            "messages_out=%d",
            self.backtest_id,
            code,
            time.monotonic() - self.opened_at,
            self.messages_in,
            self.messages_out,
        )
