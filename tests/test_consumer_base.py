"""LeanConsumer with a channel layer: both sources dispatched, one handler at a time."""

import asyncio

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from backtests.playback.consumer_base import LeanConsumer


class LayerEcho(LeanConsumer):
    """Echoes client text; relays `relay.message` layer events; records overlaps."""

    channel_layer_alias = "default"
    channels: list[str] = []
    running = 0
    overlaps = 0

    async def connect(self) -> None:
        LayerEcho.channels.append(self.channel_name)
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None) -> None:
        await self.work()
        await self.send(text_data=f"client:{text_data}")

    async def relay_message(self, event: dict) -> None:
        await self.work()
        await self.send(text_data=f"layer:{event['text']}")

    async def work(self) -> None:
        """A handler that yields: if two ran at once, `overlaps` would count it."""
        LayerEcho.running += 1
        LayerEcho.overlaps += LayerEcho.running > 1
        await asyncio.sleep(0.005)
        LayerEcho.running -= 1


async def test_client_and_layer_messages_are_both_dispatched_one_at_a_time() -> None:
    ws = WebsocketCommunicator(LayerEcho.as_asgi(), "/x")
    assert (await ws.connect())[0]
    layer = get_channel_layer()
    channel = LayerEcho.channels[-1]
    for n in range(5):
        await ws.send_to(text_data=str(n))
        await layer.send(channel, {"type": "relay.message", "text": str(n)})
    frames = [await ws.receive_from() for _ in range(10)]
    assert sorted(frames) == sorted(
        [f"client:{n}" for n in range(5)] + [f"layer:{n}" for n in range(5)]
    )
    assert [f for f in frames if f.startswith("client:")] == [f"client:{n}" for n in range(5)]
    assert LayerEcho.overlaps == 0
    await ws.disconnect()


async def test_a_failing_layer_handler_ends_the_consumer() -> None:
    ws = WebsocketCommunicator(LayerEcho.as_asgi(), "/x")
    assert (await ws.connect())[0]
    await get_channel_layer().send(LayerEcho.channels[-1], {"type": "no.such.handler"})
    try:
        await ws.wait(timeout=1)
    except ValueError as error:
        assert "no handler for message type no.such.handler" in str(error)
    else:
        raise AssertionError("the consumer kept running")
