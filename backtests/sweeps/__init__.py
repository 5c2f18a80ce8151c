"""Parameter sweeps and walk-forward analysis over the job queue (docs/sweeps.md)."""
