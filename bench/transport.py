"""Transport benchmark: this service under daphne and uvicorn against the reference.

    python -m bench.transport [--rounds 3] [--seconds 4] [--idle 1000,10000] [--quick]

Servers run pinned to core 0, load generators (bench/loadgen.py) to core 1. Each figure
is measured for every server in turn, A B C D A B C D ..., and reported as the median of
the rounds, absolute and as a ratio to the server it is compared with:

- "seed": the reference FastAPI app (../shared/anchors/fastapi_seed) under uvicorn;
- "uvicorn", "daphne": this service (project.asgi:application);
- "bare": a bare ASGI echo app under daphne (bench/bare_echo.py), daphne's ceiling.

Messages per server CPU-second come from /proc/<pid>/stat before and after the load,
so they do not depend on how fast the client is. Results: bench/results/transport.json.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import results as bench_results
from bench import servers

ROOT = Path(__file__).resolve().parent.parent
LOADGEN_CORE = 1
KINDS = {"seed": "seed", "uvicorn": "uvicorn", "daphne": "daphne", "bare": "daphne-bare"}


def loadgen(mode: str, port: int, *args: str) -> subprocess.Popen:
    """Start a load generator pinned to its core."""
    cmd = ["taskset", "-c", str(LOADGEN_CORE), sys.executable, "-m", "bench.loadgen", mode]
    return subprocess.Popen(
        [*cmd, "--port", str(port), *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen) -> dict:
    """The JSON line a load generator prints last."""
    out, _ = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def echo(server: servers.Server, conns: int, seconds: float) -> dict:
    """Closed-loop echo, with the server's CPU time over the run."""
    cpu = server.cpu_seconds()
    figures = result(loadgen("echo", server.port, "--conns", str(conns), "--seconds", str(seconds)))
    figures["server_cpu"] = server.cpu_seconds() - cpu
    figures["per_cpu_second"] = figures["messages"] / max(figures["server_cpu"], 1e-9)
    return figures


def healthz(server: servers.Server, seconds: float) -> dict:
    """GET /healthz from 50 keep-alive connections."""
    return result(loadgen("http", server.port, "--conns", "50", "--seconds", str(seconds)))


def probe_under_load(server: servers.Server, seconds: float) -> dict:
    """/healthz latency, one probe every 20 ms, while 50 connections echo flat out."""
    load = loadgen("echo", server.port, "--conns", "50", "--seconds", str(seconds + 1))
    time.sleep(0.5)
    probe = result(loadgen("probe", server.port, "--seconds", str(seconds)))
    result(load)
    return probe


def connect(server: servers.Server, count: int) -> dict:
    """Connection set-up rate and time to the first echo."""
    return result(loadgen("connect", server.port, "--count", str(count), "--concurrency", "50"))


def idle(
    server: servers.Server, conns: int, seconds: float, echo_seconds: float, settle: float = 10
) -> dict:
    """Hold `conns` idle sockets: heartbeat lateness, RSS per socket, echo while held."""
    rss_before = server.rss_bytes()
    holder = loadgen(
        "hold",
        server.port,
        "--conns",
        str(conns),
        "--seconds",
        str(seconds),
        "--settle",
        str(settle),
    )
    ready = holder.stdout.readline()
    if not ready.startswith("READY"):
        raise RuntimeError(f"hold failed: {ready!r}")
    time.sleep(1)
    rss_held = server.rss_bytes()
    figures = json.loads(holder.stdout.readline())  # after `seconds` of quiet heartbeats
    figures["echo_while_held"] = echo(server, 50, echo_seconds)
    holder.stdin.write("close\n")
    holder.stdin.flush()
    result(holder)
    figures["rss_per_connection_kib"] = (rss_held - rss_before) / conns / 1024
    return figures


def median_of(rounds: list[dict], *path: str) -> float:
    """The median over rounds of one nested figure."""
    values = []
    for figures in rounds:
        for key in path:
            figures = figures[key]
        values.append(figures)
    return statistics.median(values)


def main() -> None:
    """Measure every figure, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--idle", default="1000,10000", help="idle connection counts")
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s, 1,000 idle")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.idle = 1, 2, "1000"
    started = {name: servers.start(kind) for name, kind in KINDS.items()}
    raw: dict[str, dict[str, list]] = {name: {} for name in KINDS}
    try:
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}/{args.rounds}", flush=True)
            for name, server in started.items():
                figures = raw[name]
                figures.setdefault("echo1", []).append(echo(server, 1, args.seconds))
                figures.setdefault("echo50", []).append(echo(server, 50, args.seconds))
                figures.setdefault("healthz", []).append(healthz(server, args.seconds))
                if name != "bare":
                    figures.setdefault("probe", []).append(probe_under_load(server, args.seconds))
                figures.setdefault("connect", []).append(connect(server, 500))
        for name in ("daphne", "uvicorn"):
            for count in (int(n) for n in args.idle.split(",")):
                print(f"idle {count} on {name}", flush=True)
                raw[name][f"idle{count}"] = [idle(started[name], count, 11, args.seconds)]
    finally:
        for server in started.values():
            server.stop()
    summary = summarize(raw, args)
    path = bench_results.write("transport", {"summary": summary, "raw": raw})
    print(f"results: {path}")


def summarize(raw: dict, args) -> dict:
    """Print the table of medians and ratios, marking missed targets; return it as data."""
    rows = []

    def med(name: str, *path: str) -> float:
        return median_of(raw[name][path[0]], *path[1:])

    def row(figure, name, value, unit, reference=None, target=None, at_least=True):
        """One line: a target applies to the ratio when there is a reference."""
        ratio = value / reference if reference else None
        ok = None
        if target is not None:
            measured = ratio if ratio is not None else value
            ok = measured >= target if at_least else measured <= target
        rows.append(
            {
                "figure": figure,
                "server": name,
                "value": value,
                "unit": unit,
                "ratio": ratio,
                "target": None
                if target is None
                else f"{'>=' if at_least else '<='}{target}"
                + ("x" if ratio is not None else f" {unit}"),
                "ok": ok,
            }
        )

    ours = ("uvicorn", "daphne")
    peer_of = {"seed": "seed", "uvicorn": "seed", "daphne": "bare", "bare": "bare"}
    for conns in (1, 50):
        key = f"echo{conns}"
        for name, peer in peer_of.items():
            rate_target = {"uvicorn": 1.0, "daphne": 0.9}.get(name) if conns == 50 else None
            row(
                f"echo {conns}: msg/s",
                name,
                med(name, key, "rate"),
                "msg/s",
                med(peer, key, "rate"),
            )
            row(
                f"echo {conns}: msg per CPU-s",
                name,
                med(name, key, "per_cpu_second"),
                "msg/cpu-s",
                med(peer, key, "per_cpu_second"),
                rate_target,
            )
            for point in ("p50", "p99", "p99.9"):
                rtt_target = 1.0 if point == "p99" and conns == 50 and name in ours else None
                row(
                    f"echo {conns}: RTT {point}",
                    name,
                    med(name, key, "rtt_ms", point),
                    "ms",
                    med(peer, key, "rtt_ms", point),
                    rtt_target,
                    at_least=False,
                )
    for name in peer_of:
        mine = name in ours
        row(
            "healthz 50: req/s",
            name,
            med(name, "healthz", "rate"),
            "req/s",
            med("seed", "healthz", "rate"),
            0.15 if mine else None,
        )
        row("healthz 50: p99", name, med(name, "healthz", "latency_ms", "p99"), "ms")
        row("healthz 50: client CPU", name, med(name, "healthz", "client_cpu_share"), "core")
        if name != "bare":
            row(
                "healthz p99 under echo 50",
                name,
                med(name, "probe", "latency_ms", "p99"),
                "ms",
                target=50 if mine else None,
                at_least=False,
            )
        row(
            "connect: conn/s",
            name,
            med(name, "connect", "rate"),
            "conn/s",
            med("seed", "connect", "rate"),
        )
        row(
            "connect: first echo p99",
            name,
            med(name, "connect", "first_echo_ms", "p99"),
            "ms",
            med("seed", "connect", "first_echo_ms", "p99"),
        )
    for name in ours:
        for key in (k for k in raw[name] if k.startswith("idle")):
            n = key.removeprefix("idle")
            for point in ("p50", "p99", "max"):
                row(
                    f"{n} idle: heartbeat late {point}",
                    name,
                    med(name, key, "lateness_ms", point),
                    "ms",
                    target=100 if point == "p99" else None,
                    at_least=False,
                )
            row(
                f"{n} idle: RSS per socket",
                name,
                med(name, key, "rss_per_connection_kib"),
                "KiB",
                target=20,
                at_least=False,
            )
            row(
                f"{n} idle: echo 50 msg per CPU-s",
                name,
                med(name, key, "echo_while_held", "per_cpu_second"),
                "msg/cpu-s",
                med(name, "echo50", "per_cpu_second"),
                0.8,
            )

    print(f"\n{'figure':30} {'server':8} {'value':>10} {'unit':9} {'ratio':>7}  target")
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
        verdict = "" if r["ok"] is None else ("ok" if r["ok"] else "MISSED")
        target = f"{r['target']} {verdict}" if r["target"] else ""
        value = f"{r['value']:10.2f} {r['unit']:9} {ratio:>7}"
        print(f"{r['figure']:30} {r['server']:8} {value}  {target}")
    print(
        f"\n{args.rounds} rounds of {args.seconds:g} s, medians. Ratios: to seed; echo of"
        " daphne and bare to bare (daphne's ceiling); idle echo to the same server's echo."
    )
    return {"rows": rows, "rounds": args.rounds, "seconds": args.seconds}


if __name__ == "__main__":
    main()
