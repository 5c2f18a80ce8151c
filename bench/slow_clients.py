"""Clients that hold a server's resources without doing their part.

    python -m bench.slow_clients [--seconds 20] [--servers daphne,uvicorn]

1. Connections that never finish their request headers (silent, part-sent, trickled
   one header line a second): how long each server keeps them.
2. WebSocket clients that send ctrl messages at the rate limit and never read: how the
   server's RSS grows while they do (their replies queue in the server).

Both servers run with the default limits. Results: bench/results/slow_clients.json.
"""

import argparse
import asyncio
import socket
import time

from websockets.asyncio.client import connect

from bench import results as bench_results
from bench import servers

CTRL = '{"t":"ctrl","cmd":"seek","pos":1200,"pad":"' + "x" * 4000 + '"}'
HEADERS = {
    "silent": b"",
    "part-sent": b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n",
    "trickled": b"GET /healthz HTTP/1.1\r\n",
}


def held_for(port: int, payload: bytes, trickle: bool, seconds: float) -> str:
    """How long the server keeps a connection whose headers never complete."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.settimeout(1)
    started = time.monotonic()
    conn.sendall(payload)
    try:
        while time.monotonic() - started < seconds:
            try:
                if not conn.recv(100):
                    return f"closed after {time.monotonic() - started:.1f} s"
                return f"answered after {time.monotonic() - started:.1f} s"
            except TimeoutError:
                if trickle:
                    conn.sendall(b"X-Trickle: 1\r\n")
        return f"still open after {seconds:g} s"
    finally:
        conn.close()


async def never_read(port: int, clients: int, seconds: float, server: servers.Server) -> dict:
    """`clients` sockets send 40 ctrl messages a second each and never read a reply."""
    sockets = [
        await connect(f"ws://127.0.0.1:{port}/backtests/slow/ws", compression=None, max_queue=None)
        for _ in range(clients)
    ]
    for ws in sockets:
        ws.transport.pause_reading()  # the client stops reading; the kernel buffers fill
    rss = [server.rss_bytes()]
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        for ws in sockets:
            await ws.send(CTRL)
            sent += 1
        await asyncio.sleep(1 / 40)
        if int(time.monotonic() - started) >= len(rss) * 5:
            rss.append(server.rss_bytes())
    rss.append(server.rss_bytes())
    for ws in sockets:
        ws.transport.abort()
    return {
        "clients": clients,
        "messages_sent": sent,
        "bytes_sent": sent * len(CTRL),
        "rss_mib_every_5s": [round(r / 2**20, 1) for r in rss],
    }


def main() -> None:
    """Measure both behaviours on each server; print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--servers", default="daphne,uvicorn")
    args = parser.parse_args()
    results = {}
    for kind in args.servers.split(","):
        server = servers.start(kind, WS_RATE_LIMIT="50")
        try:
            held = {
                name: held_for(server.port, payload, name == "trickled", args.seconds)
                for name, payload in HEADERS.items()
            }
            growth = asyncio.run(never_read(server.port, 20, args.seconds, server))
        finally:
            server.stop()
        results[kind] = {"incomplete_headers": held, "never_reading": growth}
        print(f"{kind}: incomplete headers: {held}")
        print(
            f"{kind}: 20 clients sending {growth['bytes_sent'] / 2**20:.0f} MiB of ctrl messages"
            f" without reading: server RSS every 5 s {growth['rss_mib_every_5s']} MiB",
            flush=True,
        )
    print(f"results: {bench_results.write('slow_clients', results)}")


if __name__ == "__main__":
    main()
