"""Compute one run with the engine and record it: DONE with metrics and artifacts, or ERROR.

`manage.py run_backtest` calls this today; the job worker will call the same function.
"""

import logging
import time
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backtests.engine import run as engine
from backtests.models import Run, RunMetrics

logger = logging.getLogger(__name__)


def inputs_of(run: Run) -> engine.RunInputs:
    return engine.RunInputs(
        run_id=run.run_id,
        dataset_id=run.dataset_id,
        strategy_id=run.strategy_id,
        params=run.params,
        seed=run.seed,
        slippage_fees=run.slippage_fees,
    )


def execute(run_id: str) -> Run:
    """Compute the run synchronously and record the outcome; return the updated row."""
    run = Run.objects.select_related("dataset").get(run_id=run_id)
    started = time.perf_counter()
    out_dir = Path(settings.ARTIFACTS_DIR) / run.run_id
    try:
        if not run.dataset.bars_path:
            raise engine.EngineError(f"dataset {run.dataset_id} has no bars (import them first)")
        bars_path = Path(settings.DATA_DIR) / run.dataset.bars_path
        result = engine.run(inputs_of(run), bars_path, out_dir, run.dataset.bars_sha256)
    except engine.EngineError as exc:
        return record_error(run, str(exc), started)
    except Exception:
        logger.exception("run %s failed", run.run_id)
        return record_error(run, "internal error while computing the run", started)
    return record_done(run, result, started)


def record_done(run: Run, result: engine.RunResult, started: float) -> Run:
    """DONE, with the metrics row and the artifact paths, in one transaction."""
    with transaction.atomic():
        run.status = Run.Status.DONE
        run.error = ""
        run.duration_ms = round((time.perf_counter() - started) * 1000)
        run.code_hash = result.code_hash
        for key, path in result.artifacts.items():
            # Relative to ARTIFACTS_DIR, which machines may mount elsewhere.
            setattr(run, f"{key}_path", f"{run.run_id}/{path.name}")
        run.save()
        RunMetrics.objects.update_or_create(
            run=run, defaults={**result.metrics, "computed_at": timezone.now()}
        )
    return run


def record_error(run: Run, message: str, started: float) -> Run:
    """ERROR with a message for people; no metrics."""
    with transaction.atomic():
        run.status = Run.Status.ERROR
        run.error = message
        run.duration_ms = round((time.perf_counter() - started) * 1000)
        run.save()
        RunMetrics.objects.filter(run=run).delete()
    return run
