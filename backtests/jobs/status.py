"""Publish a run's status to the sockets watching it: the run's channel-layer group.

With Redis (REDIS_URL) every server process subscribed to the group gets it. With the
in-memory default the message reaches this process only; a server in another process
polls the database instead (backtests/playback/run_watch.py).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def group_name(run_id: str) -> str:
    """The channel-layer group of a run's status events."""
    return f"run-{run_id}"


def publish(run_id: str, status: str) -> None:
    """Send {"type": "run.status"} to the run's group; a failure is logged, never raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            group_name(run_id), {"type": "run.status", "run_id": run_id, "status": status}
        )
    except Exception as exc:  # the status is in the database either way
        logger.warning("run %s: status %s not published: %r", run_id, status, exc)
