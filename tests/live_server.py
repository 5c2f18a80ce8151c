"""Start the real server (daphne or uvicorn) on a free loopback port, for end-to-end tests."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bin.serve import server_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Environment variables that are this service's settings: a test server starts without
# the caller's, so that it runs on the documented defaults plus what the test passes.
SETTING_VARS = (
    "DJANGO_",
    "WS_",
    "HTTP_MAX_",
    "LOG_FORMAT",
    "DATABASE_",
    "REDIS_URL",
    "DATA_DIR",
    "ARTIFACTS_DIR",
    "JOB_",
    "RUN_STATUS_",
    "FAULT_POINTS",
    "AUTH_MODE",
    "METRICS_TOKEN",
    "POSTS_PER_MINUTE",
    "RUNS_MAX_ACTIVE",
    "SSE_MAX_",
    "ARTIFACTS_",
)

# How each server says where it listens, when started on port 0.
LISTENING = {
    "daphne": re.compile(r"Listening on TCP address 127\.0\.0\.1:(\d+)"),
    "uvicorn": re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)"),
}
COMMANDS = {
    "daphne": [
        str(BIN / "daphne"),
        "--endpoint",
        "tcp:port=0:interface=127.0.0.1",
        "project.asgi:application",
    ],
    # As `make start-backend SERVER=uvicorn` runs it.
    "uvicorn": server_command("uvicorn", "127.0.0.1", 0),
}


@dataclass
class LiveServer:
    """A running server process and where to reach it."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, name: str) -> float:
        """One unlabelled sample from the server's /metrics."""
        with urllib.request.urlopen(self.http_url + "/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"no metric {name}")

    def wait_for_metric(self, name: str, expected: float, timeout: float = 10) -> None:
        """Wait until an unlabelled sample of /metrics reads `expected`."""
        deadline = time.monotonic() + timeout
        while (value := self.metric(name)) != expected:
            assert time.monotonic() < deadline, f"{name} stuck at {value}, not {expected}"
            time.sleep(0.05)


def command(kind: str, port: int) -> list[str]:
    """The server's command line, on `port` (0: one the OS picks)."""
    cmd = list(COMMANDS[kind])
    if kind == "daphne":
        cmd[2] = f"tcp:port={port}:interface=127.0.0.1"
    else:
        cmd[cmd.index("--port") + 1] = str(port)
    return cmd


def service_env(tmp_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a process of ours: the documented defaults, state in `tmp_dir`."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(SETTING_VARS)},
        "DJANGO_VAR_DIR": str(tmp_dir),
        "PYTHONUNBUFFERED": "1",
        **env,
    }


@contextmanager
def live_server(
    kind: str, tmp_dir: Path, port: int = 0, name: str = "", **env: str
) -> Iterator[LiveServer]:
    """Run project.asgi:application under `kind` (daphne, uvicorn), on `port` or any."""
    log_path = tmp_dir / f"server-{name or kind}.log"
    full_env = service_env(tmp_dir, **env)
    offset = log_path.stat().st_size if log_path.exists() else 0  # a restart appends
    with log_path.open("a") as log:
        process = subprocess.Popen(
            command(kind, port), cwd=ROOT, env=full_env, stdout=log, stderr=log
        )
    try:
        port = wait_for_port(process, log_path, LISTENING[kind], offset)
        yield LiveServer(process, port, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_port(
    process: subprocess.Popen, log_path: Path, listening: re.Pattern, offset: int = 0
) -> int:
    """Read the server's log, from `offset`, until it says where it listens (30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = listening.search(log_path.read_text(errors="replace")[offset:])
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"server exited at start-up:\n{log_path.read_text()}")
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen within 30 s:\n{log_path.read_text()}")
