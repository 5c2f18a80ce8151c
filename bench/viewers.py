"""Playback clients for bench.playback: one process, pinned to its own core by the caller.

    python -m bench.viewers ws      --port P --run R --viewers 500 --seconds 10 --speed S
    python -m bench.viewers sse     --port P --run R --viewers 200 --seconds 10 --speed S
    python -m bench.viewers latency --port P --run R --trials 100
    python -m bench.viewers hold    --port P --run R --viewers 500 --play 0|1
    python -m bench.viewers stall   --port P --run R --viewers 20 --seconds 60

Intervals between frames are measured where they arrive, at the client. Each prints one
JSON line of results (`hold` prints "READY" first, and waits for stdin to close).
"""

import argparse
import asyncio
import itertools
import json
import socket
import sys
import time

import uvloop
from websockets.asyncio.client import connect

from bench.loadgen import ORIGIN, percentiles

PLAY = '{"t":"ctrl","cmd":"play"}'


def speed_ctrl(speed: float) -> str:
    return json.dumps({"t": "ctrl", "cmd": "speed", "val": speed})


def summarise(arrivals: list[list[float]], dropped: list[int], frames: list[int]) -> dict:
    """Interval figures over viewers: p50, the worst viewer's p95, p99 of all, dropped share."""
    per_viewer_p95, everything = [], []
    for times in arrivals:
        gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
        if gaps:
            per_viewer_p95.append(percentiles(gaps, 95)[0])
            everything.extend(gaps)
    p50, p99 = percentiles(everything, 50, 99)
    sent = sum(frames)
    return {
        "viewers": len(arrivals),
        "frames": sent,
        "interval_p50_ms": p50,
        "interval_p99_ms": p99,
        "worst_viewer_p95_ms": max(per_viewer_p95) if per_viewer_p95 else float("nan"),
        "dropped_share": sum(dropped) / max(sent + sum(dropped), 1),
    }


async def ws_viewers(port: int, run: str, viewers: int, seconds: float, speed: float) -> dict:
    """`viewers` sockets playing at `speed`; frames timed over the last `seconds`."""
    url = f"ws://127.0.0.1:{port}/backtests/{run}/ws"
    sockets = [
        await connect(url, origin=ORIGIN, compression=None, max_size=None) for _ in range(viewers)
    ]
    arrivals: list[list[float]] = [[] for _ in sockets]
    first: list[str] = ["" for _ in sockets]
    last: list[str] = ["" for _ in sockets]
    counting = False

    async def read(n: int, ws) -> None:
        async for message in ws:
            if counting and message.startswith('{"t":"frame"'):
                arrivals[n].append(time.monotonic())
                first[n] = first[n] or message
                last[n] = message

    readers = [asyncio.create_task(read(n, ws)) for n, ws in enumerate(sockets)]
    for ws in sockets:
        await ws.send(speed_ctrl(speed))
        await ws.send(PLAY)
    await asyncio.sleep(1)  # every socket is playing
    counting = True
    await asyncio.sleep(seconds)
    counting = False
    for ws in sockets:
        await ws.close()
    for reader in readers:
        reader.cancel()
    dropped = [
        json.loads(last[n])["dropped"] - json.loads(first[n])["dropped"] if last[n] else 0
        for n in range(viewers)
    ]
    return summarise(arrivals, dropped, [len(a) for a in arrivals])


async def sse_viewers(port: int, run: str, viewers: int, seconds: float, speed: float) -> dict:
    """`viewers` Server-Sent Events streams; frames timed over the last `seconds`."""
    arrivals: list[list[float]] = [[] for _ in range(viewers)]
    last: list[str] = ["" for _ in range(viewers)]
    counting = False

    async def stream(n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = f"GET /backtests/{run}/stream?speed={speed} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        try:
            while line := await reader.readline():
                if counting and line.startswith(b'data: {"t":"frame"'):
                    arrivals[n].append(time.monotonic())
                    last[n] = line[6:].decode()
        finally:
            writer.close()

    tasks = [asyncio.create_task(stream(n)) for n in range(viewers)]
    await asyncio.sleep(1)
    counting = True
    await asyncio.sleep(seconds)
    counting = False
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    dropped = [json.loads(text)["dropped"] if text else 0 for text in last]
    return summarise(arrivals, dropped, [len(a) for a in arrivals])


async def latency(port: int, run: str, trials: int) -> dict:
    """play -> first frame, and (while playing) seek -> the first frame from the new bar."""
    url = f"ws://127.0.0.1:{port}/backtests/{run}/ws"
    first_play, seeks = [], []
    async with connect(url, origin=ORIGIN, compression=None) as ws:
        await ws.send(speed_ctrl(60 * 30))  # one bar a tick
        for trial in range(trials):
            started = time.perf_counter()
            await ws.send(PLAY)
            while not (await ws.recv()).startswith('{"t":"frame"'):
                pass
            first_play.append((time.perf_counter() - started) * 1000)
            target = 1000 + 37 * trial
            started = time.perf_counter()
            await ws.send(json.dumps({"t": "ctrl", "cmd": "seek", "pos": target}))
            while True:
                message = await ws.recv()
                if message.startswith('{"t":"frame"'):
                    frame = json.loads(message)
                    if frame["i"] - frame["n"] + 1 == target:
                        break
            seeks.append((time.perf_counter() - started) * 1000)
            await ws.send('{"t":"ctrl","cmd":"pause"}')
            while await ws.recv() != '{"t":"ctrl","cmd":"pause"}':
                pass
    play_p50, play_p95 = percentiles(first_play, 50, 95)
    seek_p50, seek_p95 = percentiles(seeks, 50, 95)
    return {
        "trials": trials,
        "play_first_frame_p50_ms": play_p50,
        "play_first_frame_p95_ms": play_p95,
        "seek_next_frame_p50_ms": seek_p50,
        "seek_next_frame_p95_ms": seek_p95,
    }


async def first_play(port: int, run: str) -> dict:
    """The first play of a run in a fresh server process: play -> first frame (at one bar
    a tick, so that the first bar is due at once, as in the loaded-run figure)."""
    url = f"ws://127.0.0.1:{port}/backtests/{run}/ws"
    async with connect(url, origin=ORIGIN, compression=None) as ws:
        await ws.send(speed_ctrl(60 * 30))
        await ws.recv()
        started = time.perf_counter()
        await ws.send(PLAY)
        while not (await ws.recv()).startswith('{"t":"frame"'):
            pass
        return {"first_play_ms": (time.perf_counter() - started) * 1000}


async def hold(port: int, run: str, viewers: int, play: bool, speed: float) -> dict:
    """Open `viewers` sockets (playing, or not), say READY, hold them until stdin closes."""
    url = f"ws://127.0.0.1:{port}/backtests/{run}/ws"
    sockets = [await connect(url, origin=ORIGIN, compression=None) for _ in range(viewers)]

    async def drain(ws) -> None:
        async for _ in ws:
            pass

    readers = [asyncio.create_task(drain(ws)) for ws in sockets]
    if play:
        for ws in sockets:
            await ws.send(speed_ctrl(speed))
            await ws.send(PLAY)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for reader in readers:
        reader.cancel()
    for ws in sockets:
        await ws.close()
    return {"viewers": viewers, "playing": play}


async def stall(port: int, run: str, viewers: int, seconds: float) -> dict:
    """Sockets that play at the maximum speed and never read, for `seconds`."""
    raw = []
    for _ in range(viewers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            f"GET /backtests/{run}/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        sock.recv(1024)  # the 101
        for text in (speed_ctrl(60 * 30 * 20), PLAY):  # 20 bars a frame: frames of ~300 B
            payload = text.encode()
            mask = b"\x00\x00\x00\x00"
            sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + payload)
        raw.append(sock)
    print("READY", flush=True)
    await asyncio.sleep(seconds)
    for sock in raw:
        sock.close()
    return {"viewers": viewers, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["ws", "sse", "latency", "first", "hold", "stall"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--viewers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--speed", type=float, default=100_000)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--play", type=int, default=1)
    args = parser.parse_args()
    modes = {
        "ws": lambda: ws_viewers(args.port, args.run, args.viewers, args.seconds, args.speed),
        "sse": lambda: sse_viewers(args.port, args.run, args.viewers, args.seconds, args.speed),
        "latency": lambda: latency(args.port, args.run, args.trials),
        "first": lambda: first_play(args.port, args.run),
        "hold": lambda: hold(args.port, args.run, args.viewers, bool(args.play), args.speed),
        "stall": lambda: stall(args.port, args.run, args.viewers, args.seconds),
    }
    print(json.dumps(uvloop.run(modes[args.mode]())), flush=True)


if __name__ == "__main__":
    main()
