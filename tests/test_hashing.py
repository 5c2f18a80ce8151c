"""The canonical input hash."""

import hashlib

from backtests.catalog.hashing import canonical_json, input_hash

INPUTS = {
    "dataset_id": "AAPL-2023-1m",
    "strategy_id": "s",
    "params": {"b": [1, 2.0, {"y": 1, "x": 0.5}], "a": None},
    "seed": 1,
    "slippage_fees": {"k_spread": 0.5, "fees_bps": 1},
    "speed": 60,
}


def test_canonical_json_sorts_keys_and_unifies_numbers() -> None:
    assert canonical_json({"b": 1.0, "a": [2.50, 3, True]}) == '{"a":[2.5,3,true],"b":1}'


def test_hash_is_deterministic_and_order_independent() -> None:
    reordered = {**INPUTS, "params": {"a": None, "b": [1.0, 2, {"x": 0.5, "y": 1.0}]}}
    assert input_hash(**INPUTS) == input_hash(**reordered)
    assert len(input_hash(**INPUTS)) == 64


def test_hash_changes_with_any_input() -> None:
    base = input_hash(**INPUTS)
    changes = [("seed", 2), ("speed", 61), ("params", {}), ("dataset_id", "X")]
    for name, value in [*changes, ("strategy_version", "0123456789abcdef")]:
        assert input_hash(**{**INPUTS, name: value}) != base


def test_hash_is_sha256_of_the_documented_canonical_text() -> None:
    # Pinned: changing the canonical form would make every stored input_hash stale.
    text = (
        '{"dataset_id":"AAPL-2023-1m","params":{"a":null,"b":[1,2,{"x":0.5,"y":1}]},'
        '"seed":1,"slippage_fees":{"fees_bps":1,"k_spread":0.5},"speed":60,"strategy_id":"s"}'
    )
    assert input_hash(**INPUTS) == hashlib.sha256(text.encode()).hexdigest()
