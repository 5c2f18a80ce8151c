"""The soak's mixed-load phase, short (SOAK_SECONDS=20): a real server, real workers, one
killed every 5 s; nothing left QUEUED or RUNNING, no 5xx, no traceback, every DONE run's
files matching its manifest (`make soak` runs the long form, 600 s, on both servers)."""

import json
import subprocess
import sys

import pytest

from bench.results import RESULTS
from tests.live_server import ROOT, service_env

pytestmark = pytest.mark.e2e


def test_a_short_mixed_soak_loses_nothing(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--phases", "mixed", "--servers", "daphne"],
        cwd=ROOT,
        env=service_env(tmp_path, SOAK_SECONDS="20"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    figures = json.loads((RESULTS / "soak_mixed.json").read_text())["daphne"]
    assert all(figures["checks"].values()), figures["checks"]
    assert figures["worker_kills"] >= 3 and figures["posted"] > 20
    assert figures["sockets_played"] > 0 and figures["streams_read"] > 0
    assert figures["run_folders_checked"] >= figures["posted"] // 2
    assert "FAILED" not in result.stdout
