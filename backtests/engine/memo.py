"""Work shared across the variants of a sweep: each indicator computed once per input.

Inside `shared()`, `memoized` keeps what it computes for the arrays it was given, so that
10,000 variants of an SMA crossover over one bar series compute each window's mean once
(and each day's last bar once, for the metrics). Outside it, nothing is kept: a single
run computes as it always did. Results are read-only, since every variant receives the
same array, and they are the very values an unshared call computes, so a variant's
figures equal those of a normal run of it. What a strategy receives is its own copy.
"""

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

_cache: ContextVar[dict | None] = ContextVar("engine_memo", default=None)


@contextmanager
def shared() -> Iterator[dict]:
    """Share indicator work among everything computed inside the block."""
    cache: dict = {}
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
    hit = cache.get(slot)
    if hit is not None and hit[0] is source:
        return hit[1].copy() if copy else hit[1]
    value = compute()
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, tuple):
        for item in value:
            if isinstance(item, np.ndarray):
                item.flags.writeable = False
    cache[slot] = (source, value)
    return value.copy() if copy else value
