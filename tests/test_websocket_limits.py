"""Abuse limits on the WebSocket: message rate, floods, and open connections per process."""

import json

from tests.conftest import communicator

PLAY = '{"t":"ctrl","cmd":"pause"}'  # echo only: these sockets' ids name no run


async def test_messages_over_the_rate_are_dropped_with_one_err(settings) -> None:
    settings.WS_RATE_LIMIT = 5
    settings.WS_RATE_BURST = 5
    ws = communicator()
    assert (await ws.connect())[0]
    for _ in range(20):
        await ws.send_to(text_data=PLAY)
    frames = []
    while not await ws.receive_nothing(timeout=0.2):
        frames.append(await ws.receive_from())
    echoes = [f for f in frames if f == PLAY]
    errs = [json.loads(f) for f in frames if f != PLAY]
    assert len(echoes) == 5
    assert len(errs) == 1
    assert errs[0]["code"] == "RATE_LIMITED"
    assert errs[0]["details"] == {"limit_per_second": 5, "burst": 5, "dropped": 1}
    await ws.disconnect()


async def test_rate_limit_zero_turns_it_off(settings) -> None:
    settings.WS_RATE_LIMIT = 0
    ws = communicator()
    assert (await ws.connect())[0]
    for _ in range(300):
        await ws.send_to(text_data=PLAY)
    for _ in range(300):
        assert await ws.receive_from() == PLAY
    await ws.disconnect()


async def test_a_client_that_keeps_flooding_is_closed_with_4008(settings, caplog) -> None:
    settings.WS_RATE_LIMIT = 5
    settings.WS_RATE_BURST = 5
    settings.WS_FLOOD_CLOSE_SECONDS = 0.3
    ws = communicator()
    assert (await ws.connect())[0]
    closed = None
    for _ in range(400):
        await ws.send_to(text_data=PLAY)
        while not await ws.receive_nothing(timeout=0.002):
            output = await ws.receive_output()
            if output["type"] == "websocket.close":
                closed = output
                break
        if closed:
            break
    assert closed == {"type": "websocket.close", "code": 4008, "reason": "rate limit exceeded"}
    assert any("flooding" in r.getMessage() for r in caplog.records)
    await ws.disconnect()


async def test_other_sockets_keep_their_own_budget(settings) -> None:
    settings.WS_RATE_LIMIT = 2
    settings.WS_RATE_BURST = 2
    flood, calm = communicator("/backtests/a/ws"), communicator("/backtests/b/ws")
    assert (await flood.connect())[0] and (await calm.connect())[0]
    for _ in range(10):
        await flood.send_to(text_data=PLAY)
    await calm.send_to(text_data=PLAY)
    assert await calm.receive_from() == PLAY
    await flood.disconnect()
    await calm.disconnect()


async def test_connections_over_the_cap_are_refused_and_others_unaffected(settings) -> None:
    settings.WS_MAX_CONNECTIONS = 2
    first, second, third = communicator(), communicator(), communicator()
    assert (await first.connect())[0]
    assert (await second.connect())[0]
    assert not (await third.connect())[0]
    for ws in (first, second):
        await ws.send_to(text_data=PLAY)
        assert await ws.receive_from() == PLAY
    await first.disconnect()
    fourth = communicator()
    assert (await fourth.connect())[0]  # a place freed up
    await fourth.disconnect()
    await second.disconnect()
    await third.disconnect()
