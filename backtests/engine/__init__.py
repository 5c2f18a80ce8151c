"""The backtest engine: bars, strategies, simulation, metrics, artifacts. No Django here.

Arrays in, arrays out; `run()` (engine/run.py) is the one entry point that the job worker
and `manage.py run_backtest` call.
"""
