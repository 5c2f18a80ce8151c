"""Data benchmark: importing 1M one-minute rows, from CSV and from Parquet.

    python -m bench.data [--rows 1000000] [--repeat 3]

For each format, in a fresh process each (so that the peak memory is the import's own):
pyarrow reading the file with no checks at all (the reference: `pyarrow.csv.read_csv`
with type inference, `ParquetFile.read`), and the service's import of it (every row
checked, the interval inferred and every bar checked on its grid, Parquet written to a
temporary file and flushed): rows a second, the ratio to the bare read (target: at most
2x), and the rise of the process's resident high-water mark. Then the same files through
POST /datasets on uvicorn (the body streamed to disk, checked in a thread, the row
saved): the wall time at the client and the server's resident high-water mark.
Best of `--repeat`. Results: bench/results/data.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from bench import results as bench_results
from bench import servers

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0

# Run in a fresh interpreter: best time of `repeat` calls, and the rise of VmHWM.
MEASURE = """
import json, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {root!r})

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

import pyarrow.csv as pa_csv, pyarrow.parquet as pq
from backtests.engine import bar_files, bars
path, mode, repeat = Path({path!r}), {mode!r}, {repeat}
out = Path(tempfile.mkdtemp())

def once():
    if mode == "bare-csv":
        return pa_csv.read_csv(path).num_rows
    if mode == "bare-parquet":
        return pq.ParquetFile(path).read().num_rows
    series = bar_files.read(path, "America/New_York")
    tmp, _, _ = bars.write_temp(series, out)
    tmp.unlink()
    return len(series)

before = hwm()
best = float("inf")
for _ in range(repeat):
    started = time.perf_counter()
    rows = once()
    best = min(best, time.perf_counter() - started)
print(json.dumps({{"seconds": best, "rows": rows, "peak_rise": hwm() - before}}))
"""


def make_files(rows: int, work: Path) -> tuple[Path, Path]:
    """`rows` synthetic one-minute bars (NYSE sessions from 2014) as CSV and Parquet, the
    way users' files look: ISO times with an offset, prices with two decimals."""
    from backtests.engine import synthetic

    series = synthetic.generate("BENCH", date(2014, 1, 1), date(2024, 12, 31))
    take = slice(0, rows)
    times = np.datetime_as_string(series.ts[take].astype("datetime64[ns]"), unit="s")
    table = pa.table(
        {
            "ts": pa.array(np.char.add(times, "Z")),
            **{
                name: pa.array(getattr(series, name)[take])
                for name in ("open", "high", "low", "close", "volume")
            },
        }
    )
    csv_path = work / "bars.csv"
    pa_csv.write_csv(table, csv_path, pa_csv.WriteOptions(quoting_style="none"))
    parquet_path = work / "bars.parquet"
    typed = table.set_column(0, "ts", pa.array(series.ts[take]).cast(pa.timestamp("ns", "UTC")))
    pq.write_table(typed, parquet_path, compression="zstd")
    return csv_path, parquet_path


def measure(path: Path, mode: str, repeat: int) -> dict:
    """One mode in a fresh interpreter."""
    script = MEASURE.format(root=str(ROOT), path=str(path), mode=mode, repeat=repeat)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def server_hwm(server: servers.Server) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def upload(server: servers.Server, path: Path, content_type: str, dataset_id: str) -> float:
    """POST a file to /datasets; the wall time until the 201."""
    url = f"http://127.0.0.1:{server.port}/datasets?dataset_id={dataset_id}&symbol=BENCH"
    url += "&tz=America/New_York"
    request = urllib.request.Request(
        url, data=path.read_bytes(), headers={"Content-Type": content_type}, method="POST"
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        assert response.status == 201, response.read()[:500]
        response.read()
    return time.perf_counter() - started


def through_the_api(files: dict[str, Path], repeat: int) -> dict:
    """Each file through POST /datasets on uvicorn, a new dataset id each time."""
    var = Path(tempfile.mkdtemp(prefix="bench-data-"))
    env = {"DJANGO_VAR_DIR": str(var), "DATASET_MAX_BYTES": str(1 << 30)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    server = servers.start("uvicorn", core=0, **env)
    try:
        before = server_hwm(server)
        figures = {}
        for fmt, path in files.items():
            kind = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
            best = min(upload(server, path, kind, f"{fmt}-{n}") for n in range(repeat))
            figures[fmt] = {"seconds": best}
        figures["server_peak_rise"] = server_hwm(server) - before
        return figures
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        csv_path, parquet_path = make_files(args.rows, Path(tmp))
        files = {"csv": csv_path, "parquet": parquet_path}
        report: dict = {"rows": args.rows, "files": {k: p.stat().st_size for k, p in files.items()}}
        print(
            f"{args.rows:,} one-minute rows; CSV {files['csv'].stat().st_size / 2**20:.0f} MiB, ",
            end="",
        )
        print(f"Parquet {files['parquet'].stat().st_size / 2**20:.0f} MiB")
        print(
            f"{'':8} {'bare read':>15} {'peak':>6} {'import':>15} {'peak':>6} "
            f"{'import/bare':>12} {'(import - bare)/bare, target <= 2':>34}"
        )
        for fmt, path in files.items():
            bare = measure(path, f"bare-{fmt}", args.repeat)
            imported = measure(path, "import", args.repeat)
            ratio = imported["seconds"] / bare["seconds"]
            added = ratio - 1  # validation and writing, in units of the bare read
            report[fmt] = {"bare": bare, "import": imported, "ratio": ratio, "added": added}
            print(
                f"{fmt:8} {args.rows / bare['seconds']:>8,.0f} rows/s "
                f"{bare['peak_rise'] / 2**20:>4.0f}Mi {args.rows / imported['seconds']:>8,.0f} "
                f"rows/s {imported['peak_rise'] / 2**20:>4.0f}Mi {ratio:>11.2f}x "
                f"{added:>26.2f}x {'met' if added <= TARGET_RATIO else 'MISSED':>7}"
            )
        api = through_the_api(files, args.repeat)
        report["api"] = api
        for fmt in files:
            seconds = api[fmt]["seconds"]
            ratio = seconds / report[fmt]["import"]["seconds"]
            print(
                f"POST /datasets ({fmt}, uvicorn): {seconds:.2f} s, {args.rows / seconds:,.0f} "
                f"rows/s, {ratio:.2f}x the import in process"
            )
        print(f"server resident high-water mark rose by {api['server_peak_rise'] / 2**20:.0f} MiB")
        print("results:", bench_results.write("data", report))


if __name__ == "__main__":
    main()
