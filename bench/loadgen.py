"""Load generator: one process, run pinned to its own core by bench.transport.

    python -m bench.loadgen echo    --port P --conns 50 --seconds 5
    python -m bench.loadgen hold    --port P --conns 10000 --seconds 12
    python -m bench.loadgen http    --port P --conns 50 --seconds 5
    python -m bench.loadgen probe   --port P --seconds 5
    python -m bench.loadgen connect --port P --count 1000 --concurrency 50
    python -m bench.loadgen soak    --port P --messages 100000 --count 10000

Each prints one JSON line of results (`hold` prints "READY <n>" first, once all its
connections are open). WebSockets are opened without compression, from an allowed origin.
"""

import argparse
import asyncio
import json
import resource
import sys
import time
from array import array

from websockets.asyncio.client import connect

CTRL = '{"t":"ctrl","cmd":"speed","val":60}'  # echo only: the id names no run
ORIGIN = "http://localhost:5173"
PATH = "/backtests/01HZX3J9K2QZ8T5V6W7X8Y9Z0A/ws"


def cpu_seconds() -> float:
    """This process's CPU time so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentiles(samples, *points: float) -> list[float]:
    """The given percentiles (0-100) of `samples`, nearest-rank."""
    ordered = sorted(samples)
    if not ordered:
        return [float("nan")] * len(points)
    return [ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] for p in points]


def ws_connect(port: int):
    """A WebSocket connection to the playback path."""
    return connect(
        f"ws://127.0.0.1:{port}{PATH}",
        origin=ORIGIN,
        compression=None,
        open_timeout=60,
        max_queue=None,
        ping_interval=None,
    )


async def echo(port: int, conns: int, seconds: float) -> dict:
    """Closed-loop echo on `conns` connections: send, wait for the echo, send again."""
    rtts = array("d")
    sockets = [await ws_connect(port) for _ in range(conns)]
    stop = time.perf_counter() + seconds

    async def loop(ws) -> None:
        while (now := time.perf_counter()) < stop:
            await ws.send(CTRL)
            while await ws.recv() != CTRL:
                pass  # a heartbeat
            rtts.append(time.perf_counter() - now)

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(loop(ws) for ws in sockets))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    await asyncio.gather(*(ws.close() for ws in sockets))
    p50, p99, p999 = percentiles(rtts, 50, 99, 99.9)
    return {
        "messages": len(rtts),
        "seconds": elapsed,
        "rate": len(rtts) / elapsed,
        "rtt_ms": {"p50": p50 * 1e3, "p99": p99 * 1e3, "p99.9": p999 * 1e3},
        "client_cpu_share": cpu / elapsed,
    }


async def hold(port: int, conns: int, seconds: float, settle: float, interval: float = 5.0) -> dict:
    """Open `conns` idle connections; measure heartbeat lateness once all are open.

    Prints "READY n" when all are open, then after `seconds` the lateness figures as a
    JSON line, and keeps the connections open until a line arrives on stdin. Lateness is
    measured against each connection's schedule, which starts when its handshake
    completes here (the server starts it at its accept, a moment earlier), and only for
    heartbeats that arrive after all connections are open, when this process is idle.
    """
    lateness = array("d")
    sockets = []
    semaphore = asyncio.Semaphore(200)
    measuring = False

    async def open_one() -> None:
        async with semaphore:
            ws = await ws_connect(port)
        opened = time.perf_counter()
        sockets.append(ws)
        beat = 0
        try:
            async for frame in ws:
                if frame == '{"t":"hb"}':
                    beat += 1
                    if measuring:
                        lateness.append(time.perf_counter() - (opened + beat * interval))
        except Exception:  # the connection closes at the end of the run
            pass

    readers = [asyncio.create_task(open_one()) for _ in range(conns)]
    while len(sockets) < conns:
        await asyncio.sleep(0.05)
        failed = [t for t in readers if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
    print(f"READY {len(sockets)}", flush=True)
    await asyncio.sleep(settle)
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    p50, p99 = percentiles(lateness, 50, 99)
    print(
        json.dumps(
            {
                "connections": conns,
                "heartbeats": len(lateness),
                "lateness_ms": {
                    "p50": p50 * 1e3,
                    "p99": p99 * 1e3,
                    "max": max(lateness, default=0) * 1e3,
                },
            }
        ),
        flush=True,
    )
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    await asyncio.gather(*readers, return_exceptions=True)
    return {"closed": len(sockets)}


async def http_request(reader, writer, request: bytes) -> None:
    """One keep-alive request: send it and read the whole response."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    await reader.readexactly(length)


def healthz_request() -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"


async def http(port: int, conns: int, seconds: float) -> dict:
    """GET /healthz in a closed loop on `conns` keep-alive connections."""
    latencies = array("d")
    stop = time.perf_counter() + seconds
    request = healthz_request()

    async def loop() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (now := time.perf_counter()) < stop:
            await http_request(reader, writer, request)
            latencies.append(time.perf_counter() - now)
        writer.close()

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(conns)))
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    p50, p99 = percentiles(latencies, 50, 99)
    return {
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "latency_ms": {"p50": p50 * 1e3, "p99": p99 * 1e3},
        "client_cpu_share": cpu / elapsed,
    }


async def probe(port: int, seconds: float, every: float = 0.02) -> dict:
    """A liveness probe: one /healthz every `every` seconds, each on a new connection."""
    latencies = array("d")
    stop = time.perf_counter() + seconds
    while (now := time.perf_counter()) < stop:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await http_request(reader, writer, healthz_request())
        latencies.append(time.perf_counter() - now)
        writer.close()
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - now)))
    p50, p99 = percentiles(latencies, 50, 99)
    return {"requests": len(latencies), "latency_ms": {"p50": p50 * 1e3, "p99": p99 * 1e3}}


async def connect_rate(port: int, count: int, concurrency: int) -> dict:
    """Open `count` connections, `concurrency` at a time, each until its first echo."""
    to_first_echo = array("d")
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            start = time.perf_counter()
            async with ws_connect(port) as ws:
                await ws.send(CTRL)
                while await ws.recv() != CTRL:
                    pass
                to_first_echo.append(time.perf_counter() - start)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    elapsed = time.perf_counter() - t0
    p50, p99 = percentiles(to_first_echo, 50, 99)
    return {
        "connections": count,
        "rate": count / elapsed,
        "first_echo_ms": {"p50": p50 * 1e3, "p99": p99 * 1e3},
    }


async def soak(port: int, messages: int, cycles: int) -> dict:
    """`messages` echoes over 50 connections, then `cycles` connect/echo/disconnects."""
    sockets = [await ws_connect(port) for _ in range(50)]
    remaining = messages

    async def loop(ws) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await ws.send(CTRL)
            while await ws.recv() != CTRL:
                pass

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(ws) for ws in sockets))
    await asyncio.gather(*(ws.close() for ws in sockets))
    echo_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    await connect_rate(port, cycles, 50)
    return {
        "messages": messages,
        "echo_seconds": echo_seconds,
        "cycles": cycles,
        "cycle_seconds": time.perf_counter() - t0,
    }


def main() -> None:
    """Parse the mode and print its result as one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["echo", "hold", "http", "probe", "connect", "soak"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--settle", type=float, default=0, help="hold: wait before measuring")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.mode == "echo":
        work = echo(args.port, args.conns, args.seconds)
    elif args.mode == "hold":
        work = hold(args.port, args.conns, args.seconds, args.settle)
    elif args.mode == "http":
        work = http(args.port, args.conns, args.seconds)
    elif args.mode == "probe":
        work = probe(args.port, args.seconds)
    elif args.mode == "soak":
        work = soak(args.port, args.messages, args.count)
    else:
        work = connect_rate(args.port, args.count, args.concurrency)
    try:
        import uvloop

        result = uvloop.run(work)
    except ImportError:
        result = asyncio.run(work)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
