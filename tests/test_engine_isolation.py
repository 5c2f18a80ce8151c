"""The engine can be read, tested and benchmarked without Django."""

import subprocess
import sys

from tests.live_server import ROOT


def test_the_engine_imports_nothing_from_django() -> None:
    code = (
        "import sys, backtests.engine.run, backtests.engine.bars, backtests.engine.strategies; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
