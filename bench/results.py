"""Where the benchmarks write their JSON results: bench/results/ (git-ignored)."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, data) -> Path:
    """Write `data` as bench/results/<name>.json and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
