"""The deterministic input hash that finds an identical earlier run."""

import hashlib
import json
from typing import Any


def canonical(value: Any) -> Any:
    """A JSON value with numbers in one form: 1, 1.0 and 1e0 all become 1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    return [canonical(item) for item in value]


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, shortest round-trip floats."""
    return json.dumps(
        canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def input_hash(
    *,
    dataset_id: str,
    strategy_id: str,
    strategy_version: str = "",
    params: dict[str, Any],
    seed: int,
    slippage_fees: dict[str, Any],
    speed: int,
    owner: int | None = None,
) -> str:
    """SHA-256 of a run's canonical inputs, after defaults and dataset resolution.

    The owner is one of them: two users posting the same inputs get a run each, each
    reading only their own.
    """
    inputs = {
        "dataset_id": dataset_id,
        "strategy_id": strategy_id,
        "params": params,
        "seed": seed,
        "slippage_fees": slippage_fees,
        "speed": speed,
    }
    if strategy_version:  # absent for runs made before versions: their hashes stand
        inputs["strategy_version"] = strategy_version
    if owner is not None:  # absent for the operator's runs and AUTH_MODE=off's anonymous ones
        inputs["owner"] = owner
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def hash_of(inputs: dict[str, Any]) -> str:
    """SHA-256 of any canonical inputs (a sweep's; a walk-forward's out-of-sample run's)."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()
