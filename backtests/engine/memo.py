"""Work shared across the variants of a sweep: each indicator computed once per input.

Inside `shared()`, `memoized` keeps what it computes for the arrays it was given, so that
10,000 variants of an SMA crossover over one bar series compute each window's mean once
(and each day's last bar once, for the metrics). Outside it, nothing is kept: a single
run computes as it always did. Results are read-only, since every variant receives the
same array, and they are the very values an unshared call computes, so a variant's
figures equal those of a normal run of it. What a strategy receives is its own copy.
"""

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

# What one sweep chunk keeps at most: past it, the least recently used results go (a
# grid of 250 windows over a million bars would otherwise keep 2 GB of means).
MAX_BYTES = 256 * 2**20


class Cache:
    """Results by (kind, source, key), least recently used first, within max_bytes."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.entries: OrderedDict[tuple, tuple[np.ndarray, Any, int]] = OrderedDict()
        self.max_bytes = max_bytes
        self.bytes = 0

    def get(self, slot: tuple, source: np.ndarray) -> tuple[bool, Any]:
        """(True, the kept result) for this very source array, else (False, None)."""
        hit = self.entries.get(slot)
        if hit is None or hit[0] is not source:
            return False, None
        self.entries.move_to_end(slot)
        return True, hit[1]

    def put(self, slot: tuple, source: np.ndarray, value: Any) -> None:
        """Keep a result, then drop the least recently used past max_bytes."""
        size = nbytes(value)
        old = self.entries.pop(slot, None)
        if old is not None:
            self.bytes -= old[2]
        self.entries[slot] = (source, value, size)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self.entries) > 1:
            _, (_, _, dropped) = self.entries.popitem(last=False)
            self.bytes -= dropped


def nbytes(value: Any) -> int:
    """The bytes of the arrays in a result (an array, or a tuple holding some)."""
    items = value if isinstance(value, tuple) else (value,)
    return sum(item.nbytes for item in items if isinstance(item, np.ndarray))


_cache: ContextVar[Cache | None] = ContextVar("engine_memo", default=None)


@contextmanager
def shared(max_bytes: int = MAX_BYTES) -> Iterator[Cache]:
    """Share indicator work among everything computed inside the block."""
    cache = Cache(max_bytes)
    token = _cache.set(cache)
    try:
        yield cache
    finally:
        _cache.reset(token)


def memoized(
    kind: str,
    source: np.ndarray,
    key: Hashable,
    compute: Callable[[], Any],
    *,
    copy: bool = False,
) -> Any:
    """compute(), or its earlier result for the same kind, source array and key.

    The source is held with the result and compared by identity, so that a new array
    that happens to reuse a freed one's id() never receives that one's result. With
    `copy`, the caller receives its own copy of a kept array: what a strategy's code
    receives (it may write into it, as it may outside a sweep).
    """
    cache = _cache.get()
    if cache is None:
        return compute()
    slot = (kind, id(source), key)
    found, value = cache.get(slot, source)
    if not found:
        value = compute()
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, np.ndarray):
                item.flags.writeable = False
        cache.put(slot, source, value)
    return value.copy() if copy else value
