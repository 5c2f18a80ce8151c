"""`make start-backend`: the server and one worker, started and stopped together.

    python bin/serve.py [--server daphne|uvicorn] [--host 127.0.0.1] [--port 8000]

Ctrl-C or SIGTERM stops both: each gets one SIGTERM (the worker finishes the run it is
computing, then exits); whichever exits first, the other is stopped too. The exit code
is the server's.
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


def server_command(server: str, host: str, port: int) -> list[str]:
    """The server's command line."""
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


def main() -> int:
    """Start both, wait for a signal or for either to exit, stop both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # Own sessions: a Ctrl-C reaches this process only, which then stops each child once
    # (a second SIGINT would make the worker abandon the run it is computing).
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker"], cwd=ROOT, start_new_session=True
    )
    server = subprocess.Popen(
        server_command(args.server, args.host, args.port), cwd=ROOT, start_new_session=True
    )
    stopping = False

    def on_signal(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping and server.poll() is None and worker.poll() is None:
        time.sleep(0.2)
    if not stopping:
        name = "server" if server.poll() is not None else "worker"
        print(f"serve: the {name} exited; stopping the other", file=sys.stderr, flush=True)
    stop([server, worker])
    return server.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
