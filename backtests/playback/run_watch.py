"""The runs that this process's sockets wait on, and how their statuses reach them.

One watch per process, shared by its sockets, and only while some socket waits on a run
that is QUEUED or RUNNING (an idle socket costs nothing here):

- With Redis (REDIS_URL), the process holds one channel-layer channel, in the group of
  each run watched; workers publish every status change to the group
  (backtests/jobs/status.py). After CATCH_UP_SECONDS without an event it checks the
  database too: channels_redis drops messages silently (a full channel, an expired one).
- With the in-memory default, workers in other processes cannot reach it, so the watch
  polls the database: one query every RUN_STATUS_POLL_SECONDS for all the runs watched.

A status is delivered to every socket of the run; a final one (DONE, ERROR, CANCELLED)
ends the run's watch.
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from backtests.jobs.status import group_name
from backtests.models import Run

logger = logging.getLogger(__name__)

Callback = Callable[[str], None]
FINAL = {Run.Status.DONE, Run.Status.ERROR, Run.Status.CANCELLED}
WAITING = {Run.Status.QUEUED, Run.Status.RUNNING}
# With Redis, how long the watch waits for an event before it checks the database anyway.
CATCH_UP_SECONDS = 5
# Run ids per query of the sockets' first status lookups (SQLite allows 32,766 parameters
# a statement).
LOOKUP_BATCH = 500


def fetch_statuses(run_ids: list[str]) -> dict[str, str]:
    """The current status of each run (one query)."""
    return dict(Run.objects.filter(run_id__in=run_ids).values_list("run_id", "status"))


class RunWatch:
    """The process's watch: run id -> the callbacks of the sockets waiting on it."""

    def __init__(self) -> None:
        self.callbacks: dict[str, set[Callback]] = {}
        self.last: dict[str, str] = {}
        self.task: asyncio.Task | None = None
        self.channel: str | None = None

    @property
    def layer(self):
        layer = get_channel_layer()
        return None if isinstance(layer, InMemoryChannelLayer) else layer

    async def watch(self, run_id: str, callback: Callback, status: str) -> None:
        """Deliver the run's next statuses to `callback`, from `status` (its current one)."""
        first = run_id not in self.callbacks
        self.callbacks.setdefault(run_id, set()).add(callback)
        self.last.setdefault(run_id, status)
        loop = asyncio.get_running_loop()
        # (A task of another loop: a server runs one loop, tests one per test.)
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.channel = None
            self.task = loop.create_task(self.run())
        if first and self.layer is not None:
            await self.subscribe(run_id)

    def unwatch(self, run_id: str, callback: Callback) -> None:
        """Stop delivering to `callback`; the run's watch ends with its last socket."""
        callbacks = self.callbacks.get(run_id)
        if callbacks is None:
            return
        callbacks.discard(callback)
        if not callbacks:
            self.forget(run_id)

    def forget(self, run_id: str) -> None:
        """End a run's watch (its group is left by the loop, off this call)."""
        self.callbacks.pop(run_id, None)
        self.last.pop(run_id, None)
        if self.layer is not None and self.channel is not None:
            asyncio.get_running_loop().create_task(self.leave(run_id))

    async def subscribe(self, run_id: str) -> None:
        """Join the run's group, then check the database once: a change published before
        the join would otherwise be missed."""
        if self.channel is None:
            self.channel = await self.layer.new_channel()  # (makes a name: no await inside)
        await self.layer.group_add(group_name(run_id), self.channel)
        status = await lookup_status(run_id)
        if status is not None:
            self.deliver(run_id, status)

    async def leave(self, run_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.layer.group_discard(group_name(run_id), self.channel)

    def deliver(self, run_id: str, status: str) -> None:
        """Tell the run's sockets of a new status; a final one ends the watch."""
        if run_id not in self.callbacks or self.last.get(run_id) == status:
            return
        self.last[run_id] = status
        for callback in list(self.callbacks[run_id]):
            callback(status)
        if status in FINAL:
            self.forget(run_id)

    async def run(self) -> None:
        """While sockets wait: poll the database, or read the layer (checking the database
        after CATCH_UP_SECONDS without an event). A failure (Redis or the database away
        for a moment) is logged, and the watch carries on, catching up from the database.
        It ends with its last socket (the next watch starts it again)."""
        while self.callbacks:
            try:
                if self.layer is None:
                    await asyncio.sleep(settings.RUN_STATUS_POLL_SECONDS)
                    await self.catch_up()
                else:
                    await self.receive_one()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("run status watch: %r; retrying in 1 s", exc)
                await asyncio.sleep(1)
                with contextlib.suppress(Exception):
                    await self.catch_up()

    async def catch_up(self) -> None:
        """Deliver the current status of every run watched, from the database."""
        ids = list(self.callbacks)
        if ids:
            for run_id, status in (await database_sync_to_async(fetch_statuses)(ids)).items():
                self.deliver(run_id, status)

    async def receive_one(self) -> None:
        """One status event from the layer; or, after CATCH_UP_SECONDS without one, the
        statuses from the database (the layer drops messages silently when a channel is
        full or a message expires: a final status is never left undelivered)."""
        if self.channel is None:
            await asyncio.sleep(0.05)  # the first subscribe is making the channel
            return
        try:
            event = await asyncio.wait_for(self.layer.receive(self.channel), CATCH_UP_SECONDS)
        except TimeoutError:
            await self.catch_up()
            return
        if event.get("type") == "run.status":
            self.deliver(event["run_id"], event["status"])


WATCH = RunWatch()


class StatusLookups:
    """Sockets' first lookups of their run's status, in one query for all that ask at
    once: a socket that asks while a query runs waits for the next one, which takes every
    id asked for meanwhile. A lone socket waits for nothing more than its own query.

    Why: a lookup alone (a thread hop, a query, a connection) costs a millisecond or two
    of CPU; sockets that connect together (a page reload of many viewers, a reconnect
    after a restart) would pay it once each.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.asked: dict[str, list[asyncio.Future]] = {}
        self.fetching: asyncio.Task | None = None

    async def status(self, run_id: str) -> str | None:
        """The run's status, or None if there is no such run."""
        future = self.loop.create_future()
        self.asked.setdefault(run_id, []).append(future)
        if self.fetching is None or self.fetching.done():
            self.fetching = self.loop.create_task(self.fetch())
        return await future

    async def fetch(self) -> None:
        """Answer every id asked for, a batch a query, until none is left."""
        while self.asked:
            ids = list(self.asked)[:LOOKUP_BATCH]
            batch = {run_id: self.asked.pop(run_id) for run_id in ids}
            try:
                statuses = await database_sync_to_async(fetch_statuses)(ids)
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for run_id, futures in batch.items():
                for future in futures:
                    if not future.done():  # (a socket that left meanwhile)
                        future.set_result(statuses.get(run_id))


_LOOKUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StatusLookups] = (
    weakref.WeakKeyDictionary()
)


async def lookup_status(run_id: str) -> str | None:
    """A run's current status (None: no such run), batched with other sockets' lookups."""
    loop = asyncio.get_running_loop()
    lookups = _LOOKUPS.get(loop)
    if lookups is None:
        lookups = _LOOKUPS[loop] = StatusLookups(loop)
    return await lookups.status(run_id)
