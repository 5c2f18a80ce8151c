"""Users' bars files (CSV or Parquet) read into validated Bars, every refusal precise.

Column names are matched without regard to case; the time column may be called `ts`,
`time`, `timestamp`, `date` or `datetime`, or be the unnamed first column that pandas
writes for its index. Other columns are ignored. The fast path is Arrow's reader; when it
refuses a file, a slower pass finds which rows and columns are at fault (the encoding by
byte offset, numbers by row), so that every refusal names them.
"""

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from backtests.engine import timestamps
from backtests.engine.bars import COLUMNS, Bars, checked_interval, validate
from backtests.engine.problems import MAX_PROBLEMS, BarsError, Problem

TIME_NAMES = frozenset({"ts", "time", "timestamp", "date", "datetime"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
HEADER_LIMIT = 1 << 16  # bytes: a header line longer than this is not a bars file
BAD_ROWS = "bad rows (row 1 is the first data row):"


def read(path: Path, tz: str = "UTC", interval: str | None = None, fmt: str | None = None) -> Bars:
    """Read and validate a bars file: `fmt` "csv" or "parquet", or by the file's suffix."""
    timestamps.check_zone(tz)
    fmt = fmt or ("parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv")
    try:
        if fmt == "parquet":
            table, positions = read_parquet(path)
        else:
            table, positions = read_csv(path)
    except OSError as exc:
        raise BarsError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    return from_table(table, positions, tz, interval)


def match_columns(names: list[str]) -> dict[str, int]:
    """Each required column's 0-based place among the file's names; BarsError if one is
    missing or given twice."""
    found: dict[str, list[int]] = {}
    for index, raw in enumerate(names):
        name = raw.strip().lower()
        if name in TIME_NAMES or (index == 0 and name in ("", "unnamed: 0")):
            name = "ts"
        if name in COLUMNS:
            found.setdefault(name, []).append(index)
    twice = [name for name in COLUMNS if len(found.get(name, ())) > 1]
    if twice:
        raise BarsError(
            f"columns given twice: {', '.join(twice)} (names are matched without case, and "
            f"{', '.join(sorted(TIME_NAMES))} all name the time column)"
        )
    missing = [name for name in COLUMNS if name not in found]
    if len(missing) == len(COLUMNS):
        # Not a header at all: the file is refused by what it is, and its first line (say
        # /etc/passwd's) is not quoted back.
        raise BarsError(
            f"not a bars file: its first line names none of the columns {', '.join(COLUMNS)} "
            f"({len(names)} field{'s' if len(names) != 1 else ''}; a bars file starts with a "
            "header line naming them)"
        )
    if missing:
        raise BarsError(
            f"missing required columns: {', '.join(missing)} (found: "
            f"{', '.join(repr(n) for n in names[:20]) or 'none'})"
        )
    return {name: found[name][0] for name in COLUMNS}


def read_parquet(path: Path) -> tuple[pa.Table, dict[str, int]]:
    """The required columns of a Parquet file, by their canonical names."""
    try:
        file = pq.ParquetFile(path)
        names = file.schema_arrow.names
        places = match_columns(names)
        table = file.read(columns=[names[places[name]] for name in COLUMNS])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BarsError(f"not a readable Parquet file: {exc}") from None
    return table.rename_columns(list(COLUMNS)), {n: p + 1 for n, p in places.items()}


def read_csv(path: Path) -> tuple[pa.Table, dict[str, int]]:
    """The required columns of a CSV file: the rest as float64, times as Arrow infers
    them (timestamps with or without an offset, dates, or text when they mix)."""
    names = header(path)
    places = match_columns(names)
    generated = [f"c{i}" for i in range(len(names))]
    wanted = [generated[places[name]] for name in COLUMNS]
    types = {column: pa.float64() for column in wanted[1:]}
    try:
        table = read_csv_columns(path, generated, wanted, types)
    except pa.ArrowInvalid as exc:
        raise diagnose(path, generated, wanted, str(exc)) from None
    return table.rename_columns(list(COLUMNS)), {n: p + 1 for n, p in places.items()}


def read_csv_columns(
    path: Path, generated: list[str], wanted: list[str], types: dict[str, pa.DataType]
) -> pa.Table:
    """Arrow's CSV reader over the data rows (the header skipped), some columns only."""
    return pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=generated, skip_rows=1),
        convert_options=pa_csv.ConvertOptions(
            column_types=types, include_columns=wanted, strings_can_be_null=True
        ),
    )


def header(path: Path) -> list[str]:
    """A CSV file's column names (its first line, UTF-8, a byte-order mark allowed)."""
    with open(path, "rb") as file:
        line = file.readline(HEADER_LIMIT)
    if not line.strip():
        raise BarsError("the file is empty: expected a header line, then one row per bar")
    if b"\x00" in line:
        raise BarsError("not a bars file: a binary file (CSV is text; Parquet is named .parquet)")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(line[exc.start], exc.start, "in the header") from None
    try:
        return next(csv.reader([text]))
    except csv.Error as exc:
        raise BarsError(f"the header line is not CSV: {exc}") from None


def not_utf8(byte: int, offset: int, where: str) -> BarsError:
    """The refusal for a byte that is not UTF-8, by its offset in the file."""
    return BarsError(
        f"the file is not UTF-8: byte 0x{byte:02X} at offset {offset} ({where}) cannot be "
        "decoded; save the file as UTF-8"
    )


def first_bad_byte(path: Path) -> tuple[int, int, int] | None:
    """(byte offset, the byte, data row) of the first byte that is not UTF-8, or None."""
    base = newlines = 0
    carry = b""
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            data = carry + chunk
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as exc:
                if exc.reason == "unexpected end of data" and file.peek(1) != b"":
                    carry = data[exc.start :]  # a character cut by the chunk's end
                    data = data[: exc.start]
                else:
                    newlines += data.count(b"\n", 0, exc.start)
                    return base + exc.start, data[exc.start], newlines
            base += len(data)
            newlines += data.count(b"\n")
    return None


def diagnose(path: Path, generated: list[str], wanted: list[str], arrow_message: str) -> BarsError:
    """Why Arrow refused the CSV, by row and column (a refusal's slow path only)."""
    bad = first_bad_byte(path)
    if bad is not None:
        offset, byte, row = bad
        return not_utf8(byte, offset, f"row {row}")
    try:
        text = read_csv_columns(path, generated, wanted, dict.fromkeys(wanted, pa.string()))
    except pa.ArrowInvalid:
        return ragged_rows(path, len(generated)) or BarsError(
            f"not a readable CSV file: {arrow_message}"
        )
    problems = []
    for name, column in zip(COLUMNS[1:], wanted[1:], strict=True):
        problems += not_numbers(text.column(column).to_pylist(), name, generated.index(column) + 1)
    if problems:
        problems.sort(key=lambda p: p.row)
        return BarsError(BAD_ROWS, problems[:MAX_PROBLEMS])
    position = generated.index(wanted[0]) + 1
    try:  # the times, read as text: their refusal names the rows
        timestamps.to_utc_ns(text.column(wanted[0]), "UTC", ts_problem(position))
    except BarsError as refused:
        return refused
    return BarsError(f"not a readable CSV file: {arrow_message}")


def ts_problem(position: int) -> timestamps.Where:
    """Problems in the time column, at its place in the file."""

    def where(rule: str, row: int | None = None, value: str | None = None) -> Problem:
        return Problem(rule, row, "ts", position, value)

    return where


def not_numbers(values: list[str | None], name: str, position: int) -> list[Problem]:
    """The first values of a column that are not numbers."""
    found = []
    for row, value in enumerate(values, start=1):
        if value is None:
            continue
        try:
            float(value)
        except ValueError:
            found.append(Problem("not a number", row, name, position, repr(value)))
            if len(found) == MAX_PROBLEMS:
                break
    return found


def ragged_rows(path: Path, width: int) -> BarsError | None:
    """The first rows whose number of fields is not the header's."""
    problems = []
    with open(path, newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file)
        try:
            for line, fields in enumerate(reader):
                if line and fields and len(fields) != width:
                    problems.append(
                        Problem(f"has {len(fields)} fields, the header has {width}", row=line)
                    )
                    if len(problems) == MAX_PROBLEMS:
                        break
        except csv.Error as exc:  # a stray quote or line break: the row it is in
            problems.append(Problem(f"is not CSV: {exc}", row=reader.line_num - 1))
    return BarsError(BAD_ROWS, problems) if problems else None


def from_table(table: pa.Table, positions: dict[str, int], tz: str, interval: str | None) -> Bars:
    """Check an Arrow table's columns and rows (canonical names), and turn it into Bars."""
    if table.num_rows == 0:
        raise BarsError("the file has no rows")

    ts = timestamps.to_utc_ns(table.column("ts"), tz, ts_problem(positions["ts"]))
    columns = {"ts": ts}
    missing = []
    for name in COLUMNS[1:]:
        column = table.column(name)
        try:
            column = column.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise BarsError(f"column {name} is not numeric ({column.type})") from None
        if column.null_count:
            rows = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            missing += [Problem("missing", int(r) + 1, name, positions[name]) for r in rows[:5]]
        columns[name] = column.to_numpy()  # float64, one copy when chunked
    if missing:
        missing.sort(key=lambda p: p.row)
        raise BarsError(BAD_ROWS, missing[:MAX_PROBLEMS])
    bars = Bars(**columns, tz=tz)
    validate(bars, positions)
    found = checked_interval(ts, tz, interval, positions["ts"])
    return Bars(**columns, interval=found, tz=tz)
