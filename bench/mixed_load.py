"""The soak's mixed-load phase: a real server and two real workers under every kind of
request at once, a worker killed every 30 s, then the checks that nothing was lost.

    python -m bench.mixed_load [--seconds N] [--servers daphne,uvicorn]

For SOAK_SECONDS (600; `--seconds` overrides): POSTs of new runs, cancels, reads of the
list, of runs, trades and equity; sockets that play a DONE run and leave; SSE streams
that read a few frames and leave. Every 30 s (a quarter of the time when shorter) one
worker is killed with SIGKILL and another started. The first quarter is the warm-up.
Then the load stops, the queue drains, and the phase passes only if:

- no run is left QUEUED or RUNNING;
- no answer was a 5xx, and no socket got an INTERNAL err frame;
- no server or worker log holds a traceback;
- the server's RSS at the end is within 10% of its value after the warm-up (enforced from
  300 s on; a shorter run, as CI's, reports it);
- every DONE run's folder matches its manifest (backtests.engine.artifacts.verify).

Results: bench/results/soak_mixed.json; the exit code is 1 when a check fails.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

from backtests.engine import artifacts
from bench import results as bench_results
from bench.jobs import DRAIN, env_for, manage, spawn, stop, wait_healthy
from bench.servers import free_port
from bin.serve import server_command

ROOT = Path(__file__).resolve().parent.parent
RSS_BOUND = 0.10
# The RSS bound is a long-form check: a short run's warm-up is too short for the process
# to reach its working set (frame-text caches, allocator arenas), so it only reports it.
RSS_ENFORCED_FROM_SECONDS = 300
KILL_EVERY = 30.0
DRAIN_SECONDS = 120
DATASET = "AAPL-2023-1m"


@dataclass
class Tally:
    """What the load saw, shared by its threads."""

    statuses: Counter = field(default_factory=Counter)
    internal_errs: int = 0
    plays: int = 0  # sockets that played frames and left
    streams: int = 0  # SSE streams read and left
    failures: list[str] = field(default_factory=list)
    posted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1

    def failed(self, what: str) -> None:
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(what)


def request(base: str, method: str, path: str, tally: Tally, body: dict | None = None):
    """One request; its status and JSON body (None when not JSON), counted."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    tally.saw(status)
    if status >= 500:
        tally.failed(f"{method} {path} -> {status}: {text[:200]!r}")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, None


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Load:
    """The load's threads, until `stop` is set."""

    def __init__(self, base: str, ws_base: str, done: list[str], tally: Tally) -> None:
        self.base, self.ws_base, self.done, self.tally = base, ws_base, done, tally
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.seeds = iter(range(10**6, 10**9))
        self.seed_lock = threading.Lock()

    def start(self) -> None:
        for target, count in (
            (self.poster, 2),
            (self.canceller, 1),
            (self.reader, 1),
            (self.player, 2),
            (self.streamer, 1),
        ):
            for _ in range(count):
                thread = threading.Thread(target=self.loop, args=(target,), daemon=True)
                thread.start()
                self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(60)

    def loop(self, target) -> None:
        rng = random.Random()
        while not self.stopping.is_set():
            try:
                target(rng)
            except (OSError, TimeoutError) as exc:
                self.tally.failed(f"{target.__name__}: {exc!r}")
                time.sleep(0.5)

    def poster(self, rng: random.Random) -> None:
        with self.seed_lock:
            seed = next(self.seeds)
        fast = rng.randint(3, 20)
        body = {
            "dataset_id": DATASET,
            "strategy_id": "sma_crossover",
            "params": {"fast": fast, "slow": fast + rng.randint(5, 40)},
            "seed": seed,
            "slippage_fees": {"k_spread": 0.02, "fees_bps": 1},
        }
        status, answer = request(self.base, "POST", "/backtests", self.tally, body)
        if status == 202:
            with self.tally.lock:
                self.tally.posted.append(answer["run_id"])
        time.sleep(0.2)

    def canceller(self, rng: random.Random) -> None:
        time.sleep(1.0)
        with self.tally.lock:
            recent = self.tally.posted[-10:]
        if recent:
            request(self.base, "POST", f"/backtests/{rng.choice(recent)}/cancel", self.tally)

    def reader(self, rng: random.Random) -> None:
        run_id = rng.choice(self.done)
        for path in (
            "/backtests?limit=20",
            f"/backtests/{run_id}",
            f"/backtests/{run_id}/trades?limit=20",
            f"/backtests/{run_id}/equity",
        ):
            request(self.base, "GET", path, self.tally)
        time.sleep(0.1)

    def player(self, rng: random.Random) -> None:
        run_id = rng.choice(self.done)
        with connect(f"{self.ws_base}/backtests/{run_id}/ws", open_timeout=10) as ws:
            ws.send(json.dumps({"t": "ctrl", "cmd": "speed", "val": 600_000}))
            ws.send(json.dumps({"t": "ctrl", "cmd": "seek", "pos": rng.randint(0, 2_000)}))
            ws.send(json.dumps({"t": "ctrl", "cmd": "play"}))
            for _ in range(rng.randint(5, 40)):
                frame = json.loads(ws.recv(timeout=10))
                if frame["t"] == "err" and frame["code"] == "INTERNAL":
                    with self.tally.lock:
                        self.tally.internal_errs += 1
                if frame["t"] == "end":
                    break
        with self.tally.lock:
            self.tally.plays += 1

    def streamer(self, rng: random.Random) -> None:
        run_id = rng.choice(self.done)
        path = f"/backtests/{run_id}/stream?speed=600000&from={rng.randint(0, 2_000)}"
        with urllib.request.urlopen(self.base + path, timeout=10) as response:
            self.tally.saw(response.status)
            events = 0
            while events < 20 and (line := response.readline()):
                events += line.startswith(b"event:")
        with self.tally.lock:
            self.tally.streams += 1


def mixed(kind: str, seconds: float) -> dict:
    """One server kind under the mixed load; its figures and checks."""
    tmp = tempfile.TemporaryDirectory(prefix=f"soak-{kind}-")
    var = Path(tmp.name)
    env = env_for(tmp.name, None)
    # A killed worker's run is handed on within seconds, not the default 30.
    env.update(JOB_LEASE_SECONDS="2", RUN_STATUS_POLL_SECONDS="0.2", LOG_FORMAT="json")
    manage(env, "migrate", "--no-input")
    manage(env, "load_demo")
    manage(env, "shell", "-c", DRAIN)
    port = free_port()
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    server = spawn(env, var / "server.log", *server_command(kind, "127.0.0.1", port))
    workers = [
        spawn(env, var / f"worker-{i}.log", sys.executable, "manage.py", "run_worker")
        for i in (0, 1)
    ]
    tally = Tally()
    figures: dict = {"server": kind, "seconds": seconds}
    try:
        wait_healthy(base)
        listing = request(base, "GET", "/backtests?status=DONE&limit=100", tally)[1]
        done = [r["run_id"] for r in listing["items"]]
        load = Load(base, ws_base, done, tally)
        for run_id in done:  # every run the load plays, loaded once before the warm-up
            request(base, "GET", f"/backtests/{run_id}/play", tally)
        load.start()
        started = time.monotonic()
        warm_up = seconds / 4
        kill_every = min(KILL_EVERY, seconds / 4)
        next_kill, kills, rss_warm = started + kill_every, 0, None
        while (now := time.monotonic()) < started + seconds:
            if rss_warm is None and now >= started + warm_up:
                rss_warm = rss_bytes(server.pid)
            if now >= next_kill:
                victim = workers.pop(0)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills += 1
                log = var / f"worker-{kills + 1}.log"  # worker-0 and -1 are the first two
                workers.append(spawn(env, log, sys.executable, "manage.py", "run_worker"))
                next_kill += kill_every
            time.sleep(0.1)
        load.stop()
        left = drain(base, tally)
        time.sleep(3)
        rss_end = rss_bytes(server.pid)
        artifacts_dir = var / "artifacts"
        done_now = [p for p in artifacts_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        bad = {p.name: artifacts.verify(p) for p in done_now}
        bad = {name: problems for name, problems in bad.items() if problems}
        logs = [var / "server.log", *sorted(var.glob("worker-*.log"))]
        tracebacks = sum(path.read_text(errors="replace").count("Traceback") for path in logs)
        figures.update(
            requests=sum(tally.statuses.values()),
            statuses={str(k): v for k, v in sorted(tally.statuses.items())},
            posted=len(tally.posted),
            sockets_played=tally.plays,
            streams_read=tally.streams,
            runs_retried=handed_on(env),
            worker_kills=kills,
            left_queued_or_running=left,
            server_errors=sum(v for k, v in tally.statuses.items() if k >= 500),
            internal_err_frames=tally.internal_errs,
            tracebacks=tracebacks,
            rss_after_warm_up_mib=rss_warm / 2**20,
            rss_end_mib=rss_end / 2**20,
            rss_growth=rss_end / rss_warm - 1,
            run_folders_checked=len(done_now),
            run_folders_not_matching=bad,
            client_failures=tally.failures,
        )
        figures["checks"] = {
            "nothing left QUEUED or RUNNING": left == 0,
            "no 5xx": figures["server_errors"] == 0,
            "no INTERNAL err frame": tally.internal_errs == 0,
            "no traceback in any log": tracebacks == 0,
            f"RSS within {RSS_BOUND:.0%} of its value after the warm-up": (
                abs(figures["rss_growth"]) <= RSS_BOUND or seconds < RSS_ENFORCED_FROM_SECONDS
            ),
            "every DONE run's files match its manifest": not bad,
        }
        return figures
    finally:
        for process in [*workers, server]:
            stop(process)
        tmp.cleanup()


HANDED_ON = "from backtests.models import Run;print(Run.objects.filter(attempts__gt=1).count())"


def handed_on(env: dict) -> int:
    """Runs claimed more than once: handed on from a killed worker (from the database)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", HANDED_ON],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


def drain(base: str, tally: Tally) -> int:
    """Wait until no run is QUEUED or RUNNING (DRAIN_SECONDS); how many are left."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        left = sum(
            request(base, "GET", f"/backtests?status={status}&limit=1", tally)[1]["total"]
            for status in ("QUEUED", "RUNNING")
        )
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def report(figures: dict) -> bool:
    """Print one server's figures and checks; whether every check passed."""
    f = figures
    print(
        f"{f['server']:8} mixed load for {f['seconds']:.0f} s: {f['requests']:,} requests "
        f"({f['posted']:,} runs posted), {f['sockets_played']:,} sockets played, "
        f"{f['streams_read']:,} streams read, {f['worker_kills']} workers killed "
        f"({f['runs_retried']} runs handed on); RSS "
        f"{f['rss_after_warm_up_mib']:.1f} -> {f['rss_end_mib']:.1f} MiB "
        f"({f['rss_growth']:+.1%}); {f['run_folders_checked']} run folders checked",
        flush=True,
    )
    for check, passed in f["checks"].items():
        print(f"  {'ok    ' if passed else 'FAILED'} {check}", flush=True)
    for failure in f["client_failures"]:
        print(f"  client: {failure}", flush=True)
    return all(f["checks"].values())


def main() -> None:
    """Run the phase on each server; exit 1 if a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--servers", default="daphne,uvicorn")
    args = parser.parse_args()
    results, passed = {}, True
    for kind in args.servers.split(","):
        results[kind] = mixed(kind, args.seconds)
        passed = report(results[kind]) and passed
    print(f"results: {bench_results.write('soak_mixed', results)}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
