"""The Makefile and README as a newcomer uses them."""

import re
import subprocess
from pathlib import Path

from backtests.catalog.demo import RUNS, demo_run_id

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_an_unknown_server_is_refused_before_anything_runs() -> None:
    result = make("--dry-run", "start-backend", "SERVER=gunicorn")
    assert result.returncode != 0
    assert "SERVER must be daphne or uvicorn, not 'gunicorn'" in result.stderr
    assert "migrate" not in result.stdout and "pip" not in result.stdout


def test_help_shows_no_unexpanded_variables() -> None:
    result = make("help")
    assert result.returncode == 0
    assert "start-backend" in result.stdout
    assert "$(" not in result.stdout


def test_readme_websocket_example_names_a_demo_run() -> None:
    readme = (ROOT / "README.md").read_text()
    ids = re.findall(r"ws://localhost:8000/backtests/([^/\s]+)/ws", readme)
    assert ids
    demo_ids = {demo_run_id(index, run.name) for index, run in enumerate(RUNS)}
    assert set(ids) <= demo_ids
