"""How much each client may do (docs/access.md#quotas): POSTs a minute, active runs,
streams and sockets open, and streams per server process.

A client is its user, or, without one (AUTH_MODE=off), its address. POSTs are counted in
the cache (Redis, shared by every process, when REDIS_URL is set; this process's memory
otherwise); open streams and sockets in this process, where they live.
"""

import time
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

WINDOW_SECONDS = 60


class OverQuota(Exception):
    """A limit is reached: `retry_after` seconds is when to try again."""

    def __init__(self, message: str, limit: int, retry_after: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


def client_key(user, address: str | None) -> str:
    """Whom a limit counts: the user, or the address of an anonymous client."""
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"addr:{address or '?'}"


def take_post(key: str) -> None:
    """Count one POST in this minute's window; OverQuota past POSTS_PER_MINUTE."""
    limit = settings.POSTS_PER_MINUTE
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    name = f"quota:posts:{key}:{window}"
    cache.add(name, 0, WINDOW_SECONDS * 2)
    try:
        count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, WINDOW_SECONDS * 2)
        count = 1
    if count > limit:
        retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
        raise OverQuota(f"more than {limit} POSTs in a minute", limit, retry_after)


@dataclass
class Slot:
    """One open stream or socket, counted until it is released (once, whatever way)."""

    counter: "OpenCounter"
    key: str
    released: bool = False

    def release(self) -> None:
        """Count it out; a second call does nothing."""
        if not self.released:
            self.released = True
            self.counter.release(self.key)


class OpenCounter:
    """Open streams or sockets of this process, by client and in all."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.by_client: Counter[str] = Counter()
        self.total = 0

    def take(self, key: str, per_client: int, in_all: int) -> Slot:
        """A slot for one more, or OverQuota (0: no limit)."""
        if in_all > 0 and self.total >= in_all:
            raise OverQuota(f"{in_all} {self.what} are open on this server", in_all, 5)
        if per_client > 0 and self.by_client[key] >= per_client:
            raise OverQuota(f"you have {per_client} {self.what} open already", per_client, 5)
        self.by_client[key] += 1
        self.total += 1
        return Slot(self, key)

    def release(self, key: str) -> None:
        """One fewer open."""
        self.total -= 1
        self.by_client[key] -= 1
        if self.by_client[key] <= 0:
            del self.by_client[key]


STREAMS = OpenCounter("streams")
SOCKETS = OpenCounter("sockets")
