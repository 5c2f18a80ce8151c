"""A run's artifacts, written to a temporary folder and renamed: never half a run.

One folder per run id: equity.parquet (ts, equity, position, drawdown), orders.parquet,
fills.parquet (ts, order and fill ids, side, qty, price, slippage, fee), metrics.json,
run-manifest.json. The Parquet files hold only the run's data (no write time), so the
same inputs give byte-identical files.
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from backtests.engine.bars import Bars, read_parquet
from backtests.engine.metrics import drawdown
from backtests.engine.simulation import Simulation

NAMES = {
    "equity": "equity.parquet",
    "orders": "orders.parquet",
    "fills": "fills.parquet",
    "metrics": "metrics.json",
    "manifest": "run-manifest.json",
}
UTC_NS = pa.timestamp("ns", tz="UTC")
FILE_KEYS = ("equity", "orders", "fills", "metrics")  # the files the manifest vouches for


def timestamps(values: np.ndarray) -> pa.Array:
    """int64 UTC nanoseconds as an Arrow timestamp array."""
    return pa.array(values.astype(np.int64), type=pa.int64()).cast(UTC_NS)


def equity_table(bars: Bars, sim: Simulation) -> pa.Table:
    return pa.table(
        {
            "ts": timestamps(bars.ts),
            "equity": sim.equity,
            "position": sim.position,
            "drawdown": drawdown(sim.equity),
        }
    )


def side_names(sim: Simulation) -> pa.Array:
    return pa.array(np.where(sim.side > 0, "buy", "sell"))


def order_ids(sim: Simulation) -> pa.Array:
    return pa.array([f"o{k + 1}" for k in range(len(sim.side))], type=pa.string())


def orders_table(bars: Bars, sim: Simulation) -> pa.Table:
    """One market order per fill, sent at the signal bar's close."""
    return pa.table(
        {
            "ts": timestamps(bars.ts[sim.fill_bar - 1]),
            "order_id": order_ids(sim),
            "side": side_names(sim),
            "type": pa.array(["market"] * len(sim.side), type=pa.string()),
        }
    )


def fills_table(bars: Bars, sim: Simulation) -> pa.Table:
    return pa.table(
        {
            "ts": timestamps(bars.ts[sim.fill_bar]),
            "order_id": order_ids(sim),
            "fill_id": pa.array([f"f{k + 1}" for k in range(len(sim.side))], type=pa.string()),
            "side": side_names(sim),
            "qty": sim.qty,
            "price": sim.price,
            "slippage": sim.slippage,
            "fee": sim.fee,
        }
    )


def write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_run(
    out_dir: Path, bars: Bars, sim: Simulation, metrics: dict, manifest: dict
) -> dict[str, Path]:
    """Write every artifact into `out_dir` atomically; return their final paths."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for key, table in (
            ("equity", equity_table(bars, sim)),
            ("orders", orders_table(bars, sim)),
            ("fills", fills_table(bars, sim)),
        ):
            pq.write_table(table, tmp / NAMES[key], compression="zstd")
        write_json(tmp / NAMES["metrics"], metrics)
        # The manifest names each file's sha256: a run's folder can be checked whole.
        files = {NAMES[key]: file_sha256(tmp / NAMES[key]) for key in FILE_KEYS}
        write_json(tmp / NAMES["manifest"], {**manifest, "files": files})
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {key: out_dir / name for key, name in NAMES.items()}


def replace_dir(new: Path, target: Path) -> None:
    """Put `new` at `target`; an earlier folder there (a re-run) is removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class ArtifactUnreadable(Exception):
    """One of a finished run's files is missing or cannot be read (deleted, damaged, or
    the run was marked DONE without being computed)."""


def read(run_id: str, path: Path, columns: list[str]) -> pa.Table:
    """Columns of one of a run's Parquet artifacts; ArtifactUnreadable when it cannot be
    read, named by its file name (never the server's own path)."""
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        return read_parquet(path, columns)
    except (OSError, pa.ArrowException, KeyError):
        name = path.name if path.suffix == ".parquet" else "files"
        raise ArtifactUnreadable(
            f"run {run_id} is DONE but its {name} cannot be read (missing or damaged): "
            f"compute it again (Re-run in the admin, or manage.py run_backtest {run_id} "
            "--force)"
        ) from None


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(out_dir: Path) -> list[str]:
    """What is wrong with a run's folder against its manifest (empty: every file is there
    with the bytes the manifest names)."""
    try:
        manifest = json.loads((Path(out_dir) / NAMES["manifest"]).read_text())
    except (OSError, ValueError) as exc:
        return [f"{NAMES['manifest']}: unreadable ({exc.__class__.__name__})"]
    problems = []
    for name, expected in manifest.get("files", {}).items():
        path = Path(out_dir) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(path) != expected:
            problems.append(f"{name}: sha256 differs from the manifest's")
    if not manifest.get("files"):
        problems.append(f"{NAMES['manifest']}: names no files")
    return problems
