"""Playback benchmark: frame intervals at the client, CPU per frame, latencies, memory.

    python -m bench.playback [--seconds 10] [--stall-seconds 60]

Servers run pinned to core 0, clients (bench/viewers.py) to core 1, on the demo's catalog
(SQLite) and its run sma-20-50 over a year of one-minute bars, at 100,000x (a year in about
a minute: 30 frames a second of about 55 bars each). Results: bench/results/playback.json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import results as bench_results
from bench import servers
from bench.transport import result

ROOT = Path(__file__).resolve().parent.parent
RUN = "01HM65JQM043J5BD14TQ8NBVDK"
DONE_RUNS = [RUN, "01HM690K80SCDG86HXTDMH979N", "01HM6CEEW05MFMS0XR1Q15G573"]
CLIENT_CORE = 1
TARGETS = {"p50": (32.8, 33.8), "p99": 50.0, "worst_p95": 40.0, "dropped": 0.01}


def prepared() -> str:
    """A var dir with the migrated demo catalog (its DONE runs have artifacts)."""
    var_dir = tempfile.mkdtemp(prefix="bench-playback-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env["DJANGO_VAR_DIR"] = var_dir
    for command in (["migrate", "--no-input"], ["load_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    return var_dir


def client(mode: str, port: int, *args: str, stdin=None) -> subprocess.Popen:
    cmd = ["taskset", "-c", str(CLIENT_CORE), sys.executable, "-m", "bench.viewers", mode]
    return subprocess.Popen(
        [*cmd, "--port", str(port), "--run", RUN, *args],
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        text=True,
    )


def metric(server: servers.Server, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
        match = re.search(rf"^{re.escape(name)} (\S+)$", r.read().decode(), re.M)
    return float(match.group(1)) if match else 0.0


def cpu_times() -> list[int]:
    """The machine's CPU time so far, in clock ticks: user, nice, system, idle, iowait, irq,
    softirq, steal."""
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def steal_share(before: list[int], after: list[int]) -> float:
    """The share of the machine's time the hypervisor took between two readings."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return spent[7] / max(sum(spent), 1)


def start(kind: str, var_dir: str) -> servers.Server:
    return servers.start(kind, core=0, DJANGO_VAR_DIR=var_dir, LOG_FORMAT="json")


def intervals(kind: str, var_dir: str, mode: str, viewers: int, seconds: float) -> dict:
    """Frame intervals at the clients, and frames per server CPU-second."""
    server = start(kind, var_dir)
    try:
        cpu, machine = server.cpu_seconds(), cpu_times()
        started = time.monotonic()
        figures = result(
            client(mode, server.port, "--viewers", str(viewers), "--seconds", str(seconds))
        )
        used = server.cpu_seconds() - cpu
        # Noise on a shared machine: the time the hypervisor gave to other guests.
        figures["steal_share"] = steal_share(machine, cpu_times())
        # Frames sent over the whole client run (set-up and a 1 s warm-up included), from
        # the rate measured over the timed seconds: CPU per frame is not flattered.
        sent = figures["frames"] / seconds * (time.monotonic() - started)
        figures.update(server_cpu=used, frames_per_cpu_second=sent / max(used, 1e-9))
        figures["run_loads"] = metric(server, "backtests_playback_run_loads_total")
    finally:
        server.stop()
    return figures


def latencies(var_dir: str, trials: int) -> dict:
    """play -> first frame (loaded run) and seek -> next frame; first plays in fresh
    processes (each of the demo's three DONE runs, in three fresh servers)."""
    server = start("uvicorn", var_dir)
    try:
        figures = result(client("latency", server.port, "--trials", str(trials)))
    finally:
        server.stop()
    firsts = []
    for _ in range(3):
        server = start("uvicorn", var_dir)
        try:
            for run in DONE_RUNS:
                cmd = [
                    "taskset",
                    "-c",
                    str(CLIENT_CORE),
                    sys.executable,
                    "-m",
                    "bench.viewers",
                    "first",
                    "--port",
                    str(server.port),
                    "--run",
                    run,
                ]
                out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
                firsts.append(json.loads(out.stdout.strip().splitlines()[-1])["first_play_ms"])
        finally:
            server.stop()
    firsts.sort()
    figures["first_play_in_process_ms"] = firsts
    figures["first_play_in_process_p95_ms"] = firsts[int(len(firsts) * 0.95) - 1]
    return figures


def warm(server: servers.Server) -> None:
    """One play, so that the run's arrays are loaded before memory is measured."""
    result(client("first", server.port))


def memory(kind: str, var_dir: str, viewers: int) -> dict:
    """RSS with `viewers` idle sockets, then with them all playing: the cost per socket
    (the run loaded before either, so that its arrays count in neither)."""
    server = start(kind, var_dir)
    try:
        warm(server)
        rss = {}
        for playing in (0, 1):
            holder = client(
                "hold",
                server.port,
                "--viewers",
                str(viewers),
                "--play",
                str(playing),
                stdin=subprocess.PIPE,
            )
            assert holder.stdout.readline().strip() == "READY"
            time.sleep(3)
            rss[playing] = server.rss_bytes()
            out, _ = holder.communicate(timeout=120)  # closes its stdin: it lets go
            assert holder.returncode == 0, out
            time.sleep(1)
        cache = metric(server, "backtests_playback_cache_bytes")
        loads = metric(server, "backtests_playback_run_loads_total")
    finally:
        server.stop()
    per_socket = (rss[1] - rss[0]) / viewers
    return {
        "viewers": viewers,
        "rss_idle_mib": rss[0] / 2**20,
        "rss_playing_mib": rss[1] / 2**20,
        "arrays_mib": cache / 2**20,
        "run_loads": loads,
        "per_playing_socket_kib": per_socket / 1024,
    }


def stalled(kind: str, var_dir: str, viewers: int, seconds: float) -> dict:
    """Clients that play and never read: what they cost the server over `seconds`."""
    server = start(kind, var_dir)
    try:
        warm(server)
        before = server.rss_bytes()
        staller = client("stall", server.port, "--viewers", str(viewers), "--seconds", str(seconds))
        staller.stdout.readline()
        samples = []
        for _ in range(int(seconds // 10)):
            time.sleep(10)
            samples.append(server.rss_bytes())
        result(staller)
        time.sleep(2)
        after = server.rss_bytes()
    finally:
        server.stop()
    return {
        "viewers": viewers,
        "seconds": seconds,
        "rss_before_mib": before / 2**20,
        "rss_every_10s_mib": [s / 2**20 for s in samples],
        "rss_after_close_mib": after / 2**20,
    }


def verdict(figures: dict) -> str:
    ok = (
        TARGETS["p50"][0] <= figures["interval_p50_ms"] <= TARGETS["p50"][1]
        and figures["interval_p99_ms"] <= TARGETS["p99"]
        and figures["worst_viewer_p95_ms"] <= TARGETS["worst_p95"]
        and figures["dropped_share"] <= TARGETS["dropped"]
    )
    return "ok" if ok else "MISSED"


def show(name: str, f: dict, cpu_target: float | None = None) -> None:
    cpu = ""
    if cpu_target is not None:
        mark = "ok" if f["frames_per_cpu_second"] >= cpu_target else "MISSED"
        cpu = f", {f['frames_per_cpu_second']:,.0f} frames/CPU-s (>= {cpu_target:,}) {mark}"
    print(
        f"{name:28} p50 {f['interval_p50_ms']:.1f} ms, p99 {f['interval_p99_ms']:.1f} ms, "
        f"worst viewer p95 {f['worst_viewer_p95_ms']:.1f} ms, dropped "
        f"{f['dropped_share']:.2%}, {f['frames']:,} frames: {verdict(f)}{cpu} "
        f"(CPU steal {f['steal_share']:.1%})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--stall-seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    var_dir = prepared()
    out: dict = {}
    out["one_viewer"] = intervals("uvicorn", var_dir, "ws", 1, args.seconds)
    show("one viewer (uvicorn)", out["one_viewer"])
    out["uvicorn_500"] = intervals("uvicorn", var_dir, "ws", 500, args.seconds)
    show("uvicorn, 500 viewers", out["uvicorn_500"], 20_000)
    out["daphne_200"] = intervals("daphne", var_dir, "ws", 200, args.seconds)
    show("daphne, 200 viewers", out["daphne_200"], 8_000)
    out["sse_200"] = intervals("uvicorn", var_dir, "sse", 200, args.seconds)
    show("SSE, 200 streams (uvicorn)", out["sse_200"])
    out["latency"] = lat = latencies(var_dir, args.trials)
    print(
        f"play -> first frame p95 {lat['play_first_frame_p95_ms']:.1f} ms (<= 20), first play "
        f"in a process p95 {lat['first_play_in_process_p95_ms']:.1f} ms (<= 150), seek -> next "
        f"frame p95 {lat['seek_next_frame_p95_ms']:.1f} ms (<= 20)",
        flush=True,
    )
    for kind in ("uvicorn", "daphne"):
        out[f"memory_{kind}"] = m = memory(kind, var_dir, 500 if kind == "uvicorn" else 200)
        print(
            f"memory, {kind}: {m['per_playing_socket_kib']:.1f} KiB per playing socket beyond "
            f"an idle one (<= 32), the run's arrays {m['arrays_mib']:.1f} MiB loaded "
            f"{m['run_loads']:.0f} time(s) for {m['viewers']} viewers",
            flush=True,
        )
    for kind in ("uvicorn", "daphne"):
        out[f"stall_{kind}"] = s = stalled(kind, var_dir, 20, args.stall_seconds)
        print(
            f"20 clients that never read for {s['seconds']:.0f} s, {kind}: RSS "
            f"{s['rss_before_mib']:.1f} -> {', '.join(f'{x:.1f}' for x in s['rss_every_10s_mib'])}"
            f" MiB; after they close {s['rss_after_close_mib']:.1f} MiB",
            flush=True,
        )
    print(f"results: {bench_results.write('playback', out)}")


if __name__ == "__main__":
    main()
