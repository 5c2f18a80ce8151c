"""`make start-backend`: the server and one worker, started and stopped together.

    python bin/serve.py [--server daphne|uvicorn] [--host 127.0.0.1] [--port 8000]

Ctrl-C or SIGTERM stops both: each gets one SIGTERM (the worker finishes the run it is
computing, then exits), and the exit code is 0. A worker that dies is restarted with a
back-off, logged, while the server goes on serving; a server that exits stops the worker,
and its exit code is serve.py's.
"""

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GRACE_SECONDS = 10
# A worker that exits on its own is restarted after 1, 2, 4 ... seconds, at most 30; the
# count starts again once a worker has run for a minute.
BACKOFF_MAX_SECONDS = 30
BACKOFF_RESET_SECONDS = 60
# How a server stopped by our SIGTERM exits: 0, or killed by the signal it re-raised.
STOPPED_BY_US = (0, -signal.SIGTERM, -signal.SIGINT)


def server_command(server: str, host: str, port: int) -> list[str]:
    """The server's command line (the tests and the benchmarks start it the same way:
    `from bin.serve import server_command`)."""
    if server == "daphne":
        return [
            str(BIN / "daphne"),
            "--bind",
            host,
            "--port",
            str(port),
            "project.asgi:application",
        ]
    return [
        str(BIN / "uvicorn"),
        "project.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--ws-max-size",
        "1048576",
        "--http",
        "project.uvicorn_http:BoundedHttpToolsProtocol",
    ]


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each process still running; SIGKILL what is left after the grace period."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Worker:
    """The worker process, restarted with a back-off whenever it exits on its own."""

    def __init__(self) -> None:
        self.process = self.start()
        self.restarts = 0
        self.started_at = time.monotonic()
        self.restart_at: float | None = None

    @staticmethod
    def start() -> subprocess.Popen:
        # Its own session: a Ctrl-C reaches serve.py only, which stops the worker once
        # (a second SIGINT would make the worker abandon the run it is computing).
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"], cwd=ROOT, start_new_session=True
        )

    def check(self) -> None:
        """Restart the worker if it died, once its back-off has passed."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.process, self.started_at, self.restart_at = self.start(), now, None
                log(f"worker restarted (pid {self.process.pid})")
            return
        code = self.process.poll()
        if code is None:
            return
        if now - self.started_at > BACKOFF_RESET_SECONDS:
            self.restarts = 0  # it ran well for a while: this is a new failure, not a loop
        delay = min(BACKOFF_MAX_SECONDS, 2**self.restarts)
        self.restarts += 1
        self.restart_at = now + delay
        log(f"the worker exited (code {code}); restarting it in {delay} s; the server stays up")


def log(message: str) -> None:
    print(f"serve: {message}", file=sys.stderr, flush=True)


def say_auth_mode(host: str, port: int) -> None:
    """Say who may use the service, as the settings decide it (docs/access.md)."""
    if str(ROOT) not in sys.path:  # run as `python bin/serve.py`: bin/ is on the path
        sys.path.insert(0, str(ROOT))
    from project import settings  # reads the same environment as the server will

    if settings.AUTH_MODE == "off":
        log(
            f"AUTH_MODE=off: anyone who reaches {host}:{port} may do anything "
            "(AUTH_MODE=required asks for a token or a login)"
        )
    else:
        log(
            "AUTH_MODE=required: the API, its sockets and streams need a token "
            "(manage.py create_token NAME --create-user) or a login at /accounts/login/"
        )


def main() -> int:
    """Start both, keep the worker running, stop both on a signal or when the server exits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    say_auth_mode(args.host, args.port)
    worker = Worker()
    server = subprocess.Popen(
        server_command(args.server, args.host, args.port), cwd=ROOT, start_new_session=True
    )
    stopping = False

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping and server.poll() is None:
        worker.check()
        time.sleep(0.2)
    if not stopping:
        log(f"the server exited (code {server.returncode}); stopping the worker")
    stop([server, worker.process])
    if stopping and server.returncode in STOPPED_BY_US:
        return 0  # uvicorn re-raises the SIGTERM it was sent: that is a clean stop
    return server.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
