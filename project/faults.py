"""Fault points that tests enable, to kill a process exactly where a crash would hurt.

`FAULT_POINTS` (a setting, from the environment; empty unless a test sets it) names the
points at which the process kills itself with SIGKILL, as `kill -9` would: no clean-up,
no rollback but the database's own.
"""

import os
import signal

from django.conf import settings


def point(name: str) -> None:
    """Die here if this fault point is enabled; otherwise do nothing."""
    if name in settings.FAULT_POINTS:
        os.kill(os.getpid(), signal.SIGKILL)
