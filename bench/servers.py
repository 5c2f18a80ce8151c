"""Start the servers the benchmark measures: pinned to a core, on a free loopback port."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bin.serve import server_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEED_DIR = ROOT.parent / "shared" / "anchors" / "fastapi_seed"
SEED_VENV = ROOT / "var" / "bench-seed-venv"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running server process."""

    name: str
    process: subprocess.Popen
    port: int
    tmp: tempfile.TemporaryDirectory = field(repr=False)

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        """Resident memory now."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.tmp.cleanup()


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_python() -> Path:
    """The reference implementation's own virtual environment (created on first use)."""
    python = SEED_VENV / "bin" / "python"
    if not python.exists():
        print("bench: creating the reference server's environment in", SEED_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SEED_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(SEED_DIR / "requirements.txt"),
            ],
            check=True,
        )
    return python


def command(kind: str, port: int) -> tuple[list[str], Path]:
    """The command line for a server kind, and its working directory."""
    uvicorn = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    uvicorn += ["--log-level", "warning"]
    daphne = [str(BIN / "daphne"), "-v", "0", "-b", "127.0.0.1", "-p", str(port)]
    if kind == "daphne":
        return [*daphne, "project.asgi:application"], ROOT
    if kind == "uvicorn":  # as make start-backend runs it, quieter
        quiet = ["--no-access-log", "--log-level", "warning"]
        return [*server_command("uvicorn", "127.0.0.1", port), *quiet], ROOT
    if kind == "daphne-bare":
        return [*daphne, "bench.bare_echo:app"], ROOT
    if kind == "seed":
        return [str(seed_python().parent / "uvicorn"), "app:app", *uvicorn], SEED_DIR
    raise ValueError(f"unknown server kind {kind}")


# Every client of a benchmark comes from one address: its per-client quotas are off.
UNLIMITED = {
    "POSTS_PER_MINUTE": "0",
    "RUNS_MAX_ACTIVE": "0",
    "SSE_MAX_PER_CLIENT": "0",
    "SSE_MAX_CONNECTIONS": "0",
    "WS_MAX_PER_CLIENT": "0",
}


def start(kind: str, core: int = 0, **env: str) -> Server:
    """Start a server of `kind` pinned to `core`, and wait until /healthz answers."""
    port = free_port()
    cmd, cwd = command(kind, port)
    tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WS_"))},
        "DJANGO_VAR_DIR": tmp.name,
        # The load is the point: no per-connection rate limit, room for 10,000 sockets, and
        # no quota for the one client address that plays them all.
        "WS_RATE_LIMIT": "0",
        "WS_MAX_CONNECTIONS": "20000",
        **UNLIMITED,
        **env,
    }
    full_env.pop("DATABASE_URL", None)
    log = open(Path(tmp.name) / "server.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        ["taskset", "-c", str(core), *cmd], cwd=cwd, env=full_env, stdout=log, stderr=log
    )
    server = Server(kind, process, port, tmp)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited: {(Path(tmp.name) / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{kind} did not answer within 60 s")
