"""Soak: 100,000 messages and 10,000 connect/disconnect cycles; RSS must come back. Then
the mixed-load phase (bench/mixed_load.py): SOAK_SECONDS of every kind of request with a
worker killed every 30 s, and the checks that nothing was lost.

    python -m bench.soak [--messages 100000] [--cycles 10000] [--servers daphne,uvicorn]
                         [--phases transport,mixed] [--seconds SOAK_SECONDS]

For each server: a warm-up with the same load (the first pass grows a fresh process to
its working set), then RSS, then the soak, then RSS again after a few seconds of quiet.
The bound: RSS after within 10% of RSS before. Results: bench/results/soak.json.
"""

import argparse
import os
import subprocess
import sys
import time

from bench import mixed_load, servers
from bench import results as bench_results
from bench.transport import loadgen, result

BOUND = 0.10


def soak(server: servers.Server, messages: int, cycles: int) -> dict:
    """Warm up, measure RSS, soak, measure RSS again."""
    # The warm-up is the same load: the first pass grows the process to its working set
    # (allocator arenas, caches); the second shows whether anything keeps growing.
    result(loadgen("soak", server.port, "--messages", str(messages), "--count", str(cycles)))
    time.sleep(3)
    before = server.rss_bytes()
    figures = result(
        loadgen("soak", server.port, "--messages", str(messages), "--count", str(cycles))
    )
    time.sleep(3)
    after = server.rss_bytes()
    figures.update(rss_before_mib=before / 2**20, rss_after_mib=after / 2**20)
    figures["rss_growth"] = after / before - 1
    return figures


def main() -> None:
    """Each phase on each server; print the figures, write the JSON; exit 1 on a miss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--phases", default="transport,mixed")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    args = parser.parse_args()
    phases = args.phases.split(",")
    passed = True
    if "transport" in phases:
        passed = transport(args)
    if "mixed" in phases:
        mixed = {}
        for kind in args.servers.split(","):
            mixed[kind] = mixed_load.mixed(kind, args.seconds)
            passed = mixed_load.report(mixed[kind]) and passed
        print(f"results: {bench_results.write('soak_mixed', mixed)}")
    sys.exit(0 if passed else 1)


def transport(args) -> bool:
    """The first phase, on each server; whether RSS came back on every one."""
    results, passed = {}, True
    for kind in args.servers.split(","):
        server = servers.start(kind)
        try:
            results[kind] = soak(server, args.messages, args.cycles)
        except subprocess.SubprocessError as exc:
            sys.exit(f"{kind}: {exc}")
        finally:
            server.stop()
        f = results[kind]
        verdict = "ok" if abs(f["rss_growth"]) <= BOUND else "MISSED"
        passed = passed and verdict == "ok"
        print(
            f"{kind:8} {f['messages']:,} messages in {f['echo_seconds']:.1f}s, "
            f"{f['cycles']:,} connect/disconnect cycles in {f['cycle_seconds']:.1f}s; "
            f"RSS {f['rss_before_mib']:.1f} -> {f['rss_after_mib']:.1f} MiB "
            f"({f['rss_growth']:+.1%}, bound ±{BOUND:.0%}) {verdict}",
            flush=True,
        )
    print(f"results: {bench_results.write('soak', results)}")
    return passed


if __name__ == "__main__":
    main()
