"""Error bodies stay small whatever the request (backtests/errors.py)."""

import orjson

from backtests.errors import MAX_DETAILS, ErrorCode, rest_error
from backtests.playback.protocol import err_frame


def test_a_few_problems_are_all_shown_without_truncated() -> None:
    body = rest_error(ErrorCode.VALIDATION, "invalid request body", {"seed": "required"})
    assert body == {
        "error": {
            "code": "VALIDATION",
            "message": "invalid request body",
            "details": {"seed": "required"},
        }
    }


def test_many_problems_give_the_first_twenty_and_their_count() -> None:
    details = {f"field{i}": "unknown field" for i in range(5_000)}
    error = rest_error(ErrorCode.VALIDATION, "invalid request body", details)["error"]
    assert list(error["details"]) == [f"field{i}" for i in range(MAX_DETAILS)]
    assert error["truncated"] == {"shown": 20, "total": 5_000}


def test_long_field_names_and_texts_are_clipped() -> None:
    details = {"k" * 100_000: "v" * 100_000, "problems": list(range(1_000))}
    error = rest_error(ErrorCode.VALIDATION, "m" * 100_000, details)["error"]
    assert len(orjson.dumps(error)) < 2_000
    assert error["message"].endswith("\u2026") and len(error["message"]) == 500
    assert error["details"]["problems"] == list(range(20))
    assert error["truncated"] == {"shown": 20, "total": 1_000}


def test_a_megabyte_of_bad_fields_gets_a_small_422(api) -> None:
    nans = ",".join(f'"p{i}": NaN' for i in range(60_000))
    body = '{"dataset_id": "X", "strategy_id": "sma_crossover", "seed": 1, ' + nans + "}"
    assert len(body) > 700_000
    response = api.post("/backtests", body, raw=True)  # checked against openapi.yaml
    assert response.status_code == 422
    assert len(response.content) < 4_000  # it was 2 MB here (9.2 MB in the audit)
    error = response.data["error"]
    assert len(error["details"]) == 20 and error["truncated"]["total"] >= 60_000


def test_socket_err_frames_are_bounded_the_same_way() -> None:
    frame = orjson.loads(err_frame(ErrorCode.VALIDATION, "bad", {f"f{i}": "x" for i in range(99)}))
    assert len(frame["details"]) == 20 and frame["truncated"] == {"shown": 20, "total": 99}
    assert list(frame)[:3] == ["t", "code", "msg"]
