"""Real worker processes and management commands for end-to-end job tests."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live_server import ROOT, service_env


def manage(tmp_dir: Path, *args: str, **env: str) -> str:
    """Run a management command to completion; its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=service_env(tmp_dir, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@contextmanager
def live_worker(tmp_dir: Path, name: str = "worker", **env: str) -> Iterator[subprocess.Popen]:
    """A `manage.py run_worker` process, stopped (SIGTERM, then SIGKILL) at the end."""
    log_path = tmp_dir / f"{name}.log"
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"],
            cwd=ROOT,
            env=service_env(tmp_dir, **env),
            stdout=log,
            stderr=log,
        )
    process.log_path = log_path
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def api(base_url: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One JSON request; (status, body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_status(base_url: str, run_id: str, wanted: set[str], timeout: float = 30) -> dict:
    """Poll GET /backtests/<id> until its status is one of `wanted`; the run."""
    deadline = time.monotonic() + timeout
    while True:
        run = api(base_url, "GET", f"/backtests/{run_id}")[1]
        if run.get("status") in wanted:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stuck at {run.get('status')}"
        time.sleep(0.02)
