"""A run's time limit: the computation is interrupted after JOB_RUN_TIMEOUT_SECONDS.

A strategy is the user's code and may loop for ever; a worker must go on to the next
run. The limit is a SIGALRM timer, so it holds in a worker's main thread, where tasks
run; code in C (a long numpy call) is interrupted when it returns to Python.
"""

import contextlib
import signal
import threading
from collections.abc import Iterator


class RunTimedOut(BaseException):
    """The run was still computing when its time ran out.

    A BaseException, like KeyboardInterrupt: a strategy's own `except Exception` (or the
    engine's, which turns a strategy's failure into the run's error) cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise RunTimedOut in the block after `seconds` (main thread only; 0: no limit)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise RunTimedOut(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
