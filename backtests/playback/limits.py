"""Per-connection message-rate limit: a token bucket, and what to do with a flood.

Plain, clock-injected code (the consumer passes the loop's time), so that tests can
drive it through any schedule. docs/api/ws-protocol.md describes the behaviour.
"""

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What to do with one incoming message."""

    ALLOW = "allow"
    DROP = "drop"  # over the limit, said so recently: drop silently
    WARN = "warn"  # over the limit: drop, and send one RATE_LIMITED err
    CLOSE = "close"  # flooding for too long: close the connection


@dataclass
class RateLimiter:
    """A token bucket of `burst` messages refilled at `rate` a second, for one connection.

    A flood is a run of dropped messages with no gap of `quiet` seconds between drops;
    one that lasts `flood_seconds` closes the connection. A RATE_LIMITED err is sent at
    most once every `warn_every` seconds.
    """

    rate: float
    burst: float
    now: float
    flood_seconds: float = 10.0
    warn_every: float = 1.0
    quiet: float = 1.0

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self.updated = self.now
        self.flood_started: float | None = None
        self.last_drop = float("-inf")
        self.last_warning = float("-inf")
        self.dropped = 0

    def check(self, now: float) -> Verdict:
        """Take a token for a message arriving at `now`, or say why not."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return Verdict.ALLOW
        self.dropped += 1
        if self.flood_started is None or now - self.last_drop >= self.quiet:
            self.flood_started = now
        self.last_drop = now
        if now - self.flood_started >= self.flood_seconds:
            return Verdict.CLOSE
        if now - self.last_warning >= self.warn_every:
            self.last_warning = now
            return Verdict.WARN
        return Verdict.DROP
