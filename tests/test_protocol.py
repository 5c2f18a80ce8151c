"""Unit tests of backtests.playback.protocol: parsing, validation and err frames."""

import json

import pytest

from backtests.errors import ErrorCode
from backtests.playback import protocol

LIMIT = 65536


def reply(text: str | None, data: bytes | None = None, limit: int = LIMIT) -> dict | None:
    """The decoded reply to one frame, or None when there is none."""
    out = protocol.reply_to(text, data, limit)
    return None if out is None else json.loads(out.text)


def assert_validation(text: str | None, data: bytes | None = None, field: str = "frame") -> dict:
    """Assert the frame gets a VALIDATION err naming `field`, and return the err."""
    err = reply(text, data)
    assert err is not None
    assert err["t"] == "err"
    assert err["code"] == "VALIDATION"
    assert isinstance(err["msg"], str) and err["msg"]
    assert field in err["details"], err
    return err


@pytest.mark.parametrize(
    "text",
    [
        '{"t":"ctrl","cmd":"play"}',
        '{"t":"ctrl","cmd":"pause"}',
        '{"t":"ctrl","cmd":"seek","pos":"2023-03-01T14:30:00Z"}',
        '{"t":"ctrl","cmd":"seek","pos":"2023-03-01T14:30:00.250+00:00"}',
        '{"t":"ctrl","cmd":"seek","pos":"2023-03-01T14:30Z"}',
        '{"t":"ctrl","cmd":"seek","pos":0}',
        '{"t":"ctrl","cmd":"seek","pos":525600}',
        '{"t":"ctrl","cmd":"speed","val":60}',
        '{"t":"ctrl","cmd":"speed","val":0.5}',
        '{"t":"ctrl","cmd":"speed","val":1e-9}',
        '{"t":"ctrl","cmd":"play","req":7,"extra":{"nested":[1,2]}}',
        '  {"cmd": "play",\n "t": "ctrl"}  ',
    ],
)
def test_valid_ctrl_is_echoed_exactly_as_sent(text: str) -> None:
    reply = protocol.reply_to(text, None, LIMIT)
    assert (reply.text, reply.error, reply.ctrl.text) == (text, None, text)


def test_parse_returns_the_ctrl_command_and_message() -> None:
    message = protocol.parse_text('{"t":"ctrl","cmd":"speed","val":2}', LIMIT)
    assert message == protocol.Ctrl(
        "speed", {"t": "ctrl", "cmd": "speed", "val": 2}, '{"t":"ctrl","cmd":"speed","val":2}'
    )


def test_client_heartbeat_is_accepted_silently() -> None:
    assert protocol.parse_text('{"t":"hb"}', LIMIT) == protocol.Heartbeat()
    assert protocol.reply_to('{"t":"hb"}', None, LIMIT) is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{",
        "NaN",
        '{"t":"ctrl","cmd":"speed","val":NaN}',
        '{"t":"ctrl","cmd":"speed","val":Infinity}',
        '{"t":"ctrl","cmd":"speed","val":-Infinity}',
        '{"t":"ctrl","cmd":"play"} trailing',
        '{"t":"ctrl","cmd":"play"}{"t":"hb"}',
        '\ufeff{"t":"ctrl","cmd":"play"}',
        "[" * 20000 + "]" * 20000,
        '{"t":"ctrl","cmd":"speed","val":' + "9" * 5000 + "}",
        '{"t":"ctrl","cmd":"speed","val":1e400}',
        "{'t':'ctrl'}",
    ],
)
def test_text_that_is_not_json_gets_validation_error(text: str) -> None:
    err = assert_validation(text)
    assert err["msg"] == "frame is not valid JSON"


@pytest.mark.parametrize(
    ("text", "got"),
    [
        ("[]", "array"),
        ('"ctrl"', "string"),
        ("42", "number"),
        ("null", "null"),
        ("true", "boolean"),
    ],
)
def test_json_that_is_not_an_object_gets_validation_error(text: str, got: str) -> None:
    err = assert_validation(text)
    assert err["details"]["frame"] == f"got a JSON {got}"


def test_empty_frame_gets_validation_error() -> None:
    assert_validation("")


def test_binary_frame_gets_validation_error() -> None:
    err = assert_validation(None, b'{"t":"ctrl","cmd":"play"}')
    assert "binary" in err["msg"]


def test_missing_type_gets_validation_error() -> None:
    err = assert_validation('{"cmd":"play"}', field="t")
    assert err["details"]["t"] == "required"


@pytest.mark.parametrize("value", ["1", "null", "true", "[]", '{"a":1}'])
def test_non_string_type_gets_validation_error(value: str) -> None:
    assert_validation(f'{{"t":{value}}}', field="t")


def test_unknown_type_gets_validation_error_listing_known_types() -> None:
    err = assert_validation('{"t":"play"}', field="t")
    assert "ctrl, hb" in err["details"]["t"]


def test_long_unknown_type_is_clipped_in_the_error() -> None:
    err = assert_validation(json.dumps({"t": "x" * 5000}), field="t")
    assert len(err["details"]["t"]) < 120


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"t": "ctrl"}, "cmd"),
        ({"t": "ctrl", "cmd": "stop"}, "cmd"),
        ({"t": "ctrl", "cmd": 1}, "cmd"),
        ({"t": "ctrl", "cmd": None}, "cmd"),
        ({"t": "ctrl", "cmd": "PLAY"}, "cmd"),
        ({"t": "ctrl", "cmd": "seek"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": -1}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": 1.5}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": 3.0}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": True}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": None}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": [1]}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "yesterday"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "2023-03-01"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "2023-03-01T14:30:00"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "2023-03-01T14:30:00-05:00"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "2023-03-01T14:30:00+01:00"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "2023-02-30T00:00:00Z"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "2023-03-01T25:00:00Z"}, "pos"),
        ({"t": "ctrl", "cmd": "seek", "pos": "\uff12\uff10\uff12\uff13-03-01T14:30:00Z"}, "pos"),
        ({"t": "ctrl", "cmd": "speed"}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": 0}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": -2}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": 0.0}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": True}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": False}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": "2"}, "val"),
        ({"t": "ctrl", "cmd": "speed", "val": None}, "val"),
    ],
)
def test_invalid_ctrl_gets_validation_error_naming_the_field(message: dict, field: str) -> None:
    err = assert_validation(json.dumps(message), field=field)
    assert err["msg"] == "invalid ctrl message"
    assert list(err["details"]) == [field]


def test_non_finite_speed_is_refused_by_the_validator() -> None:
    # The JSON parser already refuses NaN and Infinity; the validator refuses them too.
    for value in (float("nan"), float("inf")):
        assert protocol.speed_problems(value) == {"val": "must be finite"}


def test_frame_at_the_size_limit_is_accepted() -> None:
    base = '{"t":"ctrl","cmd":"play","pad":""}'
    text = base.replace('""', '"' + "x" * (LIMIT - len(base)) + '"')
    assert len(text.encode()) == LIMIT
    reply = protocol.reply_to(text, None, LIMIT)
    assert (reply.text, reply.error, reply.ctrl.text) == (text, None, text)


def test_frame_over_the_size_limit_is_not_parsed() -> None:
    text = "x" * (LIMIT + 1)  # not JSON either: the size check comes first
    err = assert_validation(text, field="size")
    assert err["details"] == {"size": LIMIT + 1, "limit": LIMIT}


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    text = '{"t":"ctrl","cmd":"play","pad":"' + "é" * 32768 + '"}'
    assert len(text) < LIMIT < len(text.encode())
    err = assert_validation(text, field="size")
    assert err["details"]["size"] == len(text.encode())


def test_size_limit_is_a_parameter() -> None:
    err = reply('{"t":"hb"}', limit=5)
    assert err is not None
    assert err["details"] == {"size": 10, "limit": 5}


def test_err_frame_shape() -> None:
    frame = json.loads(protocol.err_frame(ErrorCode.VALIDATION, "bad", {"x": "y"}))
    assert frame == {"t": "err", "code": "VALIDATION", "msg": "bad", "details": {"x": "y"}}


def test_internal_error_frame_leaks_nothing() -> None:
    frame = json.loads(protocol.internal_error().text)
    assert frame["code"] == "INTERNAL"
    assert frame["details"] == {}
