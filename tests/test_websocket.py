"""The playback WebSocket through project.asgi.application: echo, errors, heartbeat, logs."""

import asyncio
import json
import logging

import pytest
from channels.testing import WebsocketCommunicator

from backtests.playback import protocol
from tests.conftest import communicator

BAD_FRAMES = [
    "not json",
    '{"t":"ctrl","cmd":"speed","val":NaN}',
    '{"t":"ctrl","cmd":"speed","val":Infinity}',
    '{"t":"ctrl","cmd":"play"} garbage',
    '\ufeff{"t":"ctrl","cmd":"play"}',
    "[" * 30000 + "]" * 30000,
    '{"t":"ctrl","cmd":"speed","val":' + "1" * 5000 + "}",
    "[1,2]",
    '"ctrl"',
    "{}",
    '{"t":5}',
    '{"t":"nope"}',
    '{"t":"ctrl"}',
    '{"t":"ctrl","cmd":"seek"}',
    '{"t":"ctrl","cmd":"seek","pos":-3}',
    '{"t":"ctrl","cmd":"seek","pos":"2023-03-01T14:30:00+02:00"}',
    '{"t":"ctrl","cmd":"speed","val":0}',
    '{"t":"ctrl","cmd":"speed","val":true}',
    "",
]

VALID = '{"t":"ctrl","cmd":"pause"}'


async def send_text(ws: WebsocketCommunicator, text: str) -> None:
    """Send a text frame, the empty one included (send_to refuses empty text)."""
    await ws.send_input({"type": "websocket.receive", "text": text})


async def assert_echo(ws: WebsocketCommunicator, text: str = VALID) -> None:
    """Send a valid ctrl message and assert it comes back unchanged (then, for play and
    seek on these sockets' ids, which name no run, the RUN_NOT_FOUND that follows)."""
    await ws.send_to(text_data=text)
    assert await ws.receive_from() == text
    if json.loads(text)["cmd"] in ("play", "seek"):
        assert json.loads(await ws.receive_from())["code"] == "RUN_NOT_FOUND"


async def receive_err(ws: WebsocketCommunicator) -> dict:
    """Receive one frame and assert it is a VALIDATION err."""
    err = json.loads(await ws.receive_from())
    assert err["t"] == "err"
    assert err["code"] == "VALIDATION"
    assert err["details"]
    return err


async def test_valid_ctrl_messages_are_echoed_unchanged(ws: WebsocketCommunicator) -> None:
    for text in (
        VALID,
        '{"t":"ctrl","cmd":"pause","req":1}',
        '{"t":"ctrl","cmd":"seek","pos":"2023-06-01T13:30:00Z"}',
        '{"t":"ctrl","cmd":"seek","pos":1200}',
        '{"t":"ctrl","cmd":"speed","val":2.5}',
    ):
        await assert_echo(ws, text)


@pytest.mark.parametrize("frame", BAD_FRAMES, ids=lambda f: f[:30] or "empty")
async def test_bad_text_frame_gets_err_and_connection_stays_open(
    ws: WebsocketCommunicator, frame: str
) -> None:
    await send_text(ws, frame)
    await receive_err(ws)
    await assert_echo(ws)


async def test_binary_frame_gets_err_and_connection_stays_open(ws: WebsocketCommunicator) -> None:
    await ws.send_to(bytes_data=VALID.encode())
    err = await receive_err(ws)
    assert "binary" in err["msg"]
    await assert_echo(ws)


async def test_every_bad_frame_in_a_row_leaves_the_connection_usable(
    ws: WebsocketCommunicator,
) -> None:
    for frame in BAD_FRAMES:
        await send_text(ws, frame)
        await receive_err(ws)
    await assert_echo(ws)


async def test_client_heartbeat_gets_no_reply(ws: WebsocketCommunicator) -> None:
    await ws.send_to(text_data='{"t":"hb"}')
    assert await ws.receive_nothing(timeout=0.1)
    await assert_echo(ws)


async def test_frame_at_limit_is_echoed_and_over_limit_gets_err(
    ws: WebsocketCommunicator, settings
) -> None:
    limit = settings.WS_MAX_MESSAGE_BYTES
    assert limit == 65536
    base = '{"t":"ctrl","cmd":"play","pad":""}'
    at_limit = base.replace('""', '"' + "x" * (limit - len(base)) + '"')
    await assert_echo(ws, at_limit)
    await ws.send_to(text_data=at_limit.replace('"x', '"xx'))
    err = await receive_err(ws)
    assert err["details"] == {"size": limit + 1, "limit": limit}
    await assert_echo(ws)


async def test_message_limit_is_a_setting(settings) -> None:
    settings.WS_MAX_MESSAGE_BYTES = 30
    ws = communicator()
    assert (await ws.connect())[0]
    await assert_echo(ws)  # 25 bytes
    await ws.send_to(text_data='{"t":"ctrl","cmd":"pause","x":1}')
    err = await receive_err(ws)
    assert err["details"] == {"size": 32, "limit": 30}
    await ws.disconnect()


async def test_heartbeat_is_sent_every_interval_from_open(settings) -> None:
    settings.WS_HEARTBEAT_INTERVAL = 0.2
    ws = communicator()
    loop = asyncio.get_running_loop()
    assert (await ws.connect())[0]
    opened = loop.time()
    assert await ws.receive_nothing(timeout=0.1)  # none before the first interval
    arrivals = []
    for _ in range(3):
        assert json.loads(await ws.receive_from(timeout=1)) == {"t": "hb"}
        arrivals.append(loop.time() - opened)
    assert arrivals[0] == pytest.approx(0.2, abs=0.1)
    assert arrivals[2] == pytest.approx(0.6, abs=0.15)
    await ws.disconnect()


async def test_heartbeat_keeps_going_between_messages(settings) -> None:
    settings.WS_HEARTBEAT_INTERVAL = 0.1
    ws = communicator()
    assert (await ws.connect())[0]
    await ws.send_to(text_data=VALID)
    frames = [await ws.receive_from(timeout=1) for _ in range(3)]
    assert VALID in frames
    assert frames.count(protocol.HEARTBEAT_FRAME) == 2
    await ws.disconnect()


async def test_close_logs_one_info_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="backtests")
    ws = communicator("/backtests/01HZX3J9K2/ws")
    assert (await ws.connect())[0]
    await assert_echo(ws)
    await ws.send_to(text_data="bad")
    await receive_err(ws)
    await ws.send_to(text_data='{"t":"hb"}')
    await ws.disconnect(code=4001)
    lines = [r for r in caplog.records if r.name == "backtests.playback.consumers"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    text = lines[0].getMessage()
    assert "backtest_id=01HZX3J9K2" in text
    assert "code=4001" in text
    assert "messages_in=3" in text
    assert "messages_out=2" in text
    assert "duration_s=" in text


@pytest.mark.parametrize("code", [1000, 1006])
async def test_disconnect_stops_the_heartbeat_and_leaves_no_task(settings, code: int) -> None:
    # 1006: the client vanished without a close frame.
    settings.WS_HEARTBEAT_INTERVAL = 0.05
    before = len(asyncio.all_tasks())
    ws = communicator()
    assert (await ws.connect())[0]
    assert json.loads(await ws.receive_from(timeout=1)) == {"t": "hb"}
    await ws.disconnect(code=code)
    await asyncio.sleep(0.2)  # four intervals: a live timer would have made tasks
    assert len(asyncio.all_tasks()) <= before
    assert await ws.receive_nothing(timeout=0.1)


async def test_handler_exception_answers_internal_err_and_keeps_the_socket(
    ws: WebsocketCommunicator, monkeypatch, caplog
) -> None:
    original = protocol.reply_to

    def explode(text_data, bytes_data, max_bytes):
        if text_data == "boom":
            raise RuntimeError("forced failure")
        return original(text_data, bytes_data, max_bytes)

    monkeypatch.setattr(protocol, "reply_to", explode)
    other = communicator("/backtests/other/ws")
    assert (await other.connect())[0]
    await ws.send_to(text_data="boom")
    err = json.loads(await ws.receive_from())
    assert err == {
        "t": "err",
        "code": "INTERNAL",
        "msg": "internal error while handling the message",
        "details": {},
    }
    assert "forced failure" not in json.dumps(err)
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1 and failures[0].exc_info
    await assert_echo(ws)
    await assert_echo(other)
    await other.disconnect()


async def test_other_connections_are_unaffected_by_a_bad_one() -> None:
    good, bad = communicator("/backtests/a/ws"), communicator("/backtests/b/ws")
    assert (await good.connect())[0] and (await bad.connect())[0]
    for frame in BAD_FRAMES[:5]:
        await bad.send_to(text_data=frame)
        await receive_err(bad)
    await assert_echo(good)
    await bad.disconnect()
    await good.disconnect()


async def test_heartbeats_do_not_pile_up_for_a_client_that_never_reads(settings) -> None:
    # Under a server with backpressure (uvicorn), a send to a client that does not read
    # waits forever: at most one heartbeat may be waiting, however long that lasts.
    from backtests.playback.consumers import PlaybackConsumer

    settings.WS_HEARTBEAT_INTERVAL = 0.01
    stuck = asyncio.Event()
    consumer = PlaybackConsumer()

    async def never_returns(message):
        await stuck.wait()

    consumer.base_send = never_returns
    consumer.scope = {"url_route": {"kwargs": {"backtest_id": "slow"}}}
    consumer.heartbeat_interval = 0.01
    loop = asyncio.get_running_loop()
    consumer.next_beat = loop.time()
    before = len(asyncio.all_tasks())
    consumer.heartbeat = loop.call_soon(consumer.beat)
    await asyncio.sleep(0.3)  # 30 intervals
    pending = [t for t in asyncio.all_tasks() if t is consumer.heartbeat_send]
    assert len(pending) == 1
    assert len(asyncio.all_tasks()) <= before + 1
    consumer.heartbeat.cancel()
    stuck.set()
    await asyncio.sleep(0)
