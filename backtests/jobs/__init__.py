"""Running backtests: compute a run with the engine and record the result."""
