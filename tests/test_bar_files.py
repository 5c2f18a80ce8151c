"""Users' bars files: any interval, inferred or given and checked on its grid; every
refusal names its rows and columns; dates outside the supported range, bad numbers,
bad bytes and mixed offsets refused clearly, never with Arrow's traceback."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtests.engine import bar_files, intervals
from backtests.engine.problems import BarsError
from tests import bar_shapes

HEADER = "ts,open,high,low,close,volume\n"


def csv(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "bars.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


def refusal(path: Path, **options) -> BarsError:
    with pytest.raises(BarsError) as refused:
        bar_files.read(path, **options)
    return refused.value


@pytest.mark.parametrize(
    ("make", "interval", "tz"),
    [
        (bar_shapes.daily_nyse, "1d", "America/New_York"),
        (bar_shapes.hourly_fx, "1h", "UTC"),
        (bar_shapes.crypto_daily, "1d", "UTC"),
        (bar_shapes.weekly, "1w", "UTC"),
        (bar_shapes.monthly, "1mo", "UTC"),
    ],
)
def test_the_interval_is_inferred_from_users_files(tmp_path, make, interval, tz) -> None:
    path = make(tmp_path / "bars.csv")
    series = bar_files.read(path, tz=tz)
    assert (series.interval, series.tz) == (interval, tz)
    assert len(series) == len(path.read_text().splitlines()) - 1


def test_daily_dates_are_midnight_in_the_datasets_zone(tmp_path) -> None:
    series = bar_files.read(bar_shapes.daily_nyse(tmp_path / "d.csv"), tz="America/New_York")
    first = np.datetime64(int(series.ts[0]), "ns")
    assert str(first) == "2019-01-02T05:00:00.000000000"  # midnight EST is 05:00 UTC
    july = np.datetime64("2019-07-01", "D").astype(np.int64)
    summer = series.ts[intervals.local_days(series.ts, "America/New_York") == july]
    assert int(summer[0]) % intervals.DAY_NS == 4 * 3_600_000_000_000  # EDT: 04:00 UTC


def test_parquet_with_other_names_types_and_satoshi_prices(tmp_path) -> None:
    series = bar_files.read(
        bar_shapes.minute_parquet(tmp_path / "m.parquet"), tz="America/New_York"
    )
    assert series.interval == "1m"
    assert str(np.datetime64(int(series.ts[0]), "ns")) == "2023-03-01T14:30:00.000000000"
    assert series.close.min() > 1e-5 and series.close.max() < 1e-4


@pytest.mark.parametrize("step", [5, 15, 30, 60, 240])
def test_intraday_intervals_with_a_phase(tmp_path, step: int) -> None:
    """Bars from 9:30 New York time (an hourly grid 30 minutes past the hour), sessions
    apart, across a daylight-saving change."""
    rows = []
    for day in ("2023-03-09", "2023-03-10", "2023-03-13", "2023-03-14"):
        start = np.datetime64(f"{day}T09:30")
        for k in range(0, 390, step):
            rows.append(f"{str(start + np.timedelta64(k, 'm')).replace('T', ' ')},10,11,9,10,1")
    name = {5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h"}[step]
    assert bar_files.read(csv(tmp_path, rows), tz="America/New_York").interval == name


def test_a_given_interval_refuses_bars_off_its_grid_naming_them(tmp_path) -> None:
    rows = [f"2023-01-03 {h:02d}:00,10,11,9,10,1" for h in range(9, 15)]
    rows.insert(3, "2023-01-03 11:30,10,11,9,10,1")
    message = str(refusal(csv(tmp_path, rows), interval="1h"))
    assert "bad rows for 1h bars" in message
    assert "row 4, column ts (file column 1), value 2023-01-03T11:30:00.000000000Z" in message
    assert "not on the 1h grid" in message


def test_two_bars_on_one_date_are_refused_for_daily_bars(tmp_path) -> None:
    rows = ["2023-01-03,10,11,9,10,1", "2023-01-04,10,11,9,10,1", "2023-01-04 12:00,10,11,9,10,1"]
    message = str(refusal(csv(tmp_path, rows), interval="1d"))
    assert "row 3" in message and "not at 00:00 local time like row 1" in message


def test_an_interval_that_cannot_be_told_asks_for_one(tmp_path) -> None:
    rows = [
        "2023-01-03 10:00,10,11,9,10,1",
        "2023-01-03 10:07,10,11,9,10,1",
        "2023-01-03 10:14,10,11,9,10,1",
    ]
    message = str(refusal(csv(tmp_path, rows)))
    assert "cannot tell the bar interval" in message and "7 minutes" in message
    assert "give the interval" in message
    assert "give the interval" in str(refusal(csv(tmp_path, rows[:1])))
    assert "unknown interval '2h'" in str(refusal(csv(tmp_path, rows), interval="2h"))


@pytest.mark.parametrize(
    "day", ["0001-01-01", "1677-01-01", "2262-04-12", "1899-12-31", "2200-01-01"]
)
def test_dates_outside_the_supported_range_are_named(tmp_path, day: str) -> None:
    rows = ["2023-01-03,10,11,9,10,1", f"{day},10,11,9,10,1"]
    message = str(refusal(csv(tmp_path, rows)))
    assert f"row 2, column ts (file column 1), value {day}T00:00:00" in message
    assert "outside the supported dates, 1900-01-01 to 2199-12-31" in message


def test_parquet_times_outside_the_range_do_not_overflow(tmp_path) -> None:
    path = tmp_path / "far.parquet"
    table = pa.table(
        {
            "ts": pa.array([np.datetime64("2023-01-03", "s"), np.datetime64("3000-01-01", "s")]),
            **{name: [10.0, 10.0] for name in ("open", "high", "low", "close", "volume")},
        }
    )
    pq.write_table(table, path)
    assert "row 2, column ts (file column 1), value 3000-01-01T00:00:00" in str(refusal(path))


def test_a_bad_number_names_its_row_and_column(tmp_path) -> None:
    rows = ["2023-01-03,10,11,9,10,1", "2023-01-04,10,11,9,10,1", "2023-01-05,abc,11,9,10,1"]
    message = str(refusal(csv(tmp_path, rows)))
    assert "row 3, column open (file column 2), value 'abc': not a number" in message


def test_columns_are_matched_by_name_not_place(tmp_path) -> None:
    rows = ["1,2023-01-03,10,9,11,10", "2,2023-01-04,10,9,12,x"]
    message = str(refusal(csv(tmp_path, rows, "Volume,Date,Close,Low,High,Open\n")))
    assert "row 2, column open (file column 6), value 'x': not a number" in message


def test_a_byte_that_is_not_utf8_is_named_by_its_offset(tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    body = HEADER.encode() + b"2023-01-03,10,11,9,10,1\n2023-01-04,1\xb2,11,9,10,1\n"
    path.write_bytes(body)
    message = str(refusal(path))
    offset = body.index(b"\xb2")
    assert f"not UTF-8: byte 0xB2 at offset {offset} (row 2)" in message


def test_a_header_that_is_not_utf8_is_refused(tmp_path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"ts,open,high,low,cl\xf6se,volume\n2023-01-03,10,11,9,10,1\n")
    assert "byte 0xF6 at offset 19 (in the header)" in str(refusal(path))


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("2023-01-03T14:30:00Z", "2023-01-03T14:31:00", "has no UTC offset, but row 1 has one"),
        (
            "2023-01-03T14:30:00",
            "2023-01-03T14:31:00+00:00",
            "has a UTC offset, but row 1 has none",
        ),
    ],
)
def test_times_with_and_without_an_offset_are_not_mixed(tmp_path, first, second, expected) -> None:
    message = str(refusal(csv(tmp_path, [f"{first},10,11,9,10,1", f"{second},10,11,9,10,1"])))
    assert f"row 2, column ts (file column 1), value '{second}': {expected}" in message
    assert "use ISO 8601" not in message


def test_offsets_other_than_utc_are_kept(tmp_path) -> None:
    rows = ["2023-01-03T09:30:00-05:00,10,11,9,10,1", "2023-01-03T09:31:00-05:00,10,11,9,10,1"]
    series = bar_files.read(csv(tmp_path, rows), tz="America/New_York")
    assert str(np.datetime64(int(series.ts[0]), "ns")) == "2023-01-03T14:30:00.000000000"


def test_a_time_the_clock_change_repeats_is_refused(tmp_path) -> None:
    rows = [f"2023-11-05 0{h}:30,10,11,9,10,1" for h in range(4)]
    message = str(refusal(csv(tmp_path, rows), tz="America/New_York"))
    assert "row 2" in message and "occurs twice or not at all in America/New_York" in message


def test_an_unknown_zone_is_refused_before_reading(tmp_path) -> None:
    assert "unknown time zone 'Mars/Olympus'" in str(
        refusal(tmp_path / "absent.csv", tz="Mars/Olympus")
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("2023-01-03,10,11,9,10", "row 2: has 5 fields, the header has 6"),
        ("2023-01-03,,11,9,10,1", "row 2, column open (file column 2): missing"),
        (",10,11,9,10,1", "row 2, column ts (file column 1): missing"),
    ],
)
def test_missing_values_and_fields_are_named(tmp_path, row: str, expected: str) -> None:
    assert expected in str(refusal(csv(tmp_path, ["2023-01-02,10,11,9,10,1", row])))


def test_a_column_named_twice_is_refused(tmp_path) -> None:
    message = str(
        refusal(
            csv(tmp_path, ["2023-01-03,1,10,11,9,10,1"], "date,ts,open,high,low,close,volume\n")
        )
    )
    assert "columns given twice: ts" in message


def test_an_empty_file_and_a_header_only_file(tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "the file is empty" in str(refusal(empty))
    assert "the file has no rows" in str(refusal(csv(tmp_path, [])))


def test_a_bad_time_past_the_readers_first_block_is_named(tmp_path) -> None:
    """Arrow infers the column's type from its first block; a later bad value still gets
    its row named."""
    start = np.datetime64("2023-01-03T14:30")
    rows = [f"{start + np.timedelta64(i, 'm')}:00Z,10,11,9,10,1" for i in range(40_000)]
    rows[35_000] = "yesterday,10,11,9,10,1"
    message = str(refusal(csv(tmp_path, rows)))
    assert (
        "row 35001, column ts (file column 1), value 'yesterday': not an ISO 8601 time" in message
    )


def test_basic_iso_dates_are_times_too(tmp_path) -> None:
    series = bar_files.read(csv(tmp_path, ["20230103,10,11,9,10,1", "20230104,10,11,9,10,1"]))
    assert series.interval == "1d"
    assert str(np.datetime64(int(series.ts[1]), "ns")) == "2023-01-04T00:00:00.000000000"


GOOD_FILE = (
    ",Open,High,Low,Close,Volume\n"
    + "\n".join(f"2024-01-{d:02d},10,11,9,10.5,5" for d in range(1, 29))
    + "\n"
).encode()
DEBRIS = [b'"', b",", b"\n", b"\r", b"\x00", b"\xff", b"Z", b"+05:00", b"nan", b"-", b"e9"]


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.sampled_from(DEBRIS), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_any_damaged_file_is_refused_with_a_message(tmp_path_factory, edits, fmt) -> None:
    """A file damaged anywhere is read or refused with BarsError, never a traceback."""
    body = bytearray(GOOD_FILE)
    for where, debris, replace in edits:
        at = int(where * len(body))
        body[at : at + (len(debris) if replace else 0)] = debris
    path = tmp_path_factory.mktemp("fuzz") / f"bars.{fmt}"
    path.write_bytes(bytes(body))
    try:
        bar_files.read(path)
    except BarsError as refused:
        assert str(refused)


def test_a_stray_quote_names_its_row(tmp_path) -> None:
    rows = ["2023-01-03,10,11,9,10,1", '2023-01-04,10,"11\r,9,10,1', "2023-01-05,10,11,9,10,1"]
    message = str(refusal(csv(tmp_path, rows)))
    assert "row 2" in message


@pytest.mark.parametrize(
    "text",
    [
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        "my secret diary, page one\nand page two\n",
        "[settings]\npassword = hunter2\n",
    ],
)
def test_a_file_that_is_not_bars_is_refused_without_quoting_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "notes.csv"
    path.write_text(text)
    message = str(refusal(path))
    assert message.startswith("not a bars file: its first line names none of the columns")
    for word in ("root", "secret", "password", "hunter2", "settings"):
        assert word not in message


def test_a_binary_file_is_refused_as_binary(tmp_path: Path) -> None:
    path = tmp_path / "program"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00secret-symbol\n")
    message = str(refusal(path))
    assert message.startswith("not a bars file: a binary file") and "secret" not in message


def test_a_header_with_some_columns_still_names_what_it_found(tmp_path: Path) -> None:
    message = str(refusal(csv(tmp_path, ["2023-01-03,1,2"], "Date,Open,Price\n")))
    assert "missing required columns: high, low, close, volume" in message
    assert "'Price'" in message  # a header's names help the user map their columns
