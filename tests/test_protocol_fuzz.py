"""Property-based tests of the protocol: any input is a message or a VALIDATION error."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtests.errors import ErrorCode
from backtests.playback import protocol

LIMIT = 65536
FUZZ = settings(max_examples=400, deadline=250, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.fixed_dictionaries(
    {"t": st.sampled_from(["ctrl", "hb", "err", "CTRL", ""]) | json_scalars},
    optional={
        "cmd": st.sampled_from(["play", "pause", "seek", "speed", "stop"]) | json_scalars,
        "pos": st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats()
        | st.datetimes().map(lambda d: d.isoformat() + "Z")
        | json_values,
        "val": st.floats() | st.integers() | json_values,
        "extra": json_values,
    },
)
VALID = [
    '{"t":"ctrl","cmd":"play"}',
    '{"t":"ctrl","cmd":"seek","pos":"2023-03-01T14:30:00Z"}',
    '{"t":"ctrl","cmd":"speed","val":2.5}',
    '{"t":"hb"}',
]


def assert_message_or_validation(text: str | None, data: bytes | None = None) -> None:
    """The property: a parsed message, or a VALIDATION ProtocolError; nothing else."""
    try:
        message = protocol.parse_frame(text, data, LIMIT)
    except protocol.ProtocolError as error:
        assert error.code is ErrorCode.VALIDATION
        frame = json.loads(error.frame())
        assert frame["t"] == "err" and isinstance(frame["details"], dict) and frame["details"]
        return
    assert isinstance(message, protocol.Ctrl | protocol.Heartbeat)
    if isinstance(message, protocol.Ctrl):
        assert message.text == text
        assert message.cmd in protocol.CTRL_COMMANDS


@FUZZ
@given(st.text(max_size=2000))
def test_any_text(text: str) -> None:
    assert_message_or_validation(text)


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_are_refused(data: bytes) -> None:
    assert_message_or_validation(None, data)


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_decoded_as_text(data: bytes) -> None:
    assert_message_or_validation(data.decode("utf-8", "replace"))


@FUZZ
@given(messages)
def test_any_json_message(message: dict) -> None:
    assert_message_or_validation(json.dumps(message))


@FUZZ
@given(
    st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 60), st.text(max_size=3)), max_size=5)
)
def test_mutated_valid_frames(text: str, edits: list[tuple[int, str]]) -> None:
    for position, insert in edits:
        position %= len(text) + 1
        text = text[:position] + insert + text[position + 1 :]
    assert_message_or_validation(text)


@FUZZ
@given(json_values)
def test_reply_never_raises(value) -> None:
    reply = protocol.reply_to(json.dumps(value), None, LIMIT)
    assert reply is None or reply.text


@settings(max_examples=20, deadline=1000)
@given(st.integers(LIMIT - 10, LIMIT * 3), st.sampled_from(["a", "é", "€", "😀"]))
def test_large_frames_are_refused_quickly_by_size(size: int, char: str) -> None:
    text = char * (size // len(char.encode()))
    assert_message_or_validation(text)
