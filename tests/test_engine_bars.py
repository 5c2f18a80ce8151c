"""Bars files: every row checked, the first bad rows named, Parquet written atomically."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from backtests.engine import bar_files, bars

HEADER = "ts,open,high,low,close,volume\n"
GOOD_ROWS = [
    "2023-01-03T14:30:00Z,10,11,9,10.5,100",
    "2023-01-03T14:31:00Z,10.5,11,10,10.8,200",
    "2023-01-03T14:32:00Z,10.8,11.2,10.7,11,0",
]


def csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def refusal(tmp_path: Path, rows: list[str], header: str = HEADER) -> str:
    with pytest.raises(bars.BarsError) as refused:
        bar_files.read(csv(tmp_path, rows, header))
    return str(refused.value)


def test_a_good_csv_reads_as_utc_nanoseconds(tmp_path: Path) -> None:
    series = bar_files.read(csv(tmp_path, GOOD_ROWS))
    assert len(series) == 3
    assert series.ts[0] == np.datetime64("2023-01-03T14:30:00", "ns").astype(np.int64)
    assert series.close.tolist() == [10.5, 10.8, 11.0]


def test_naive_times_are_placed_in_the_given_zone(tmp_path: Path) -> None:
    rows = ["2023-01-03 09:30:00,10,11,9,10.5,100", "2023-01-03 09:31:00,10,11,9,10.5,100"]
    series = bar_files.read(csv(tmp_path, rows), tz="America/New_York")
    assert series.ts[0] == np.datetime64("2023-01-03T14:30:00", "ns").astype(np.int64)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("2023-01-03T14:33:30Z,11,11.5,10.9,11.2,10", "row 4, column ts"),
        ("2023-01-03T14:32:00Z,11,11.5,10.9,11.2,10", "duplicate or out of order"),
        (
            "2023-01-03T14:33:00Z,0,11.5,10.9,11.2,10",
            "row 4, column open (file column 2), value 0.0: must be > 0",
        ),
        (
            "2023-01-03T14:33:00Z,11,11.5,10.9,nan,10",
            "row 4, column close (file column 5): missing",
        ),
        ("2023-01-03T14:33:00Z,11,11.1,10.9,11.2,10", "column high (file column 3), value 11.1"),
        ("2023-01-03T14:33:00Z,11,11.5,11.1,11.2,10", "column low (file column 4), value 11.1"),
        (
            "2023-01-03T14:33:00Z,11,11.5,10.9,11.2,-1",
            "column volume (file column 6), value -1.0: must be >= 0",
        ),
        ("yesterday,11,11.5,10.9,11.2,1", "row 4, column ts (file column 1), value 'yesterday'"),
    ],
)
def test_each_rule_names_the_bad_row(tmp_path: Path, row: str, expected: str) -> None:
    assert expected in refusal(tmp_path, [*GOOD_ROWS, row])


def test_missing_columns_are_named(tmp_path: Path) -> None:
    message = refusal(tmp_path, ["2023-01-03T14:30:00Z,10,11,9"], "ts,open,high,low\n")
    assert "missing required columns: close, volume" in message


def test_at_most_five_problems_are_listed_first_rows_first(tmp_path: Path) -> None:
    rows = [f"2023-01-03T14:{30 + i:02d}:00Z,10,11,9,10.5,-{i + 1}" for i in range(9)]
    message = refusal(tmp_path, rows)
    listed = [line for line in message.splitlines() if "column volume" in line]
    assert len(listed) == 5 and listed[0].strip().startswith("row 1,")


def test_write_is_parquet_zstd_with_its_sha256(tmp_path: Path) -> None:
    series = bar_files.read(csv(tmp_path, GOOD_ROWS))
    target = tmp_path / "data" / "x.parquet"
    digest, size = bars.write(series, target)
    assert (digest, size) == bars.sha256_of(target)
    assert pq.ParquetFile(target).metadata.row_group(0).column(1).compression == "ZSTD"
    assert pq.read_table(target).column_names == list(bars.COLUMNS)
    loaded = bars.load(target)
    assert loaded.ts.tolist() == series.ts.tolist()
    assert [p.name for p in target.parent.iterdir()] == ["x.parquet"]  # no temp file left
    assert bar_files.read(target).close.tolist() == series.close.tolist()  # Parquet reads back


def test_a_failed_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    series = bar_files.read(csv(tmp_path, GOOD_ROWS))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bars.pq, "write_table", crash)
    with pytest.raises(OSError):
        bars.write(series, tmp_path / "data" / "x.parquet")
    assert list((tmp_path / "data").iterdir()) == []
