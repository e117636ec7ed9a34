"""Series read from raw CSV: the two readers agree (forecast timestamps: tests/test_frequency.py)."""

import numpy as np
import pytest


def read_both(path, **flags):
    """(columnar reader's series, row-by-row reader's series) of one well-formed file."""
    import csv

    from trainer.data import series as module

    text = path.read_text()
    header = [cell.strip() for cell in next(csv.reader([text.split("\n", 1)[0]]))]
    long_format = "series_id" in header
    target = flags.get("target") or ("value" if long_format else header[1])
    columns = dict(target=target, timestamp_column="timestamp",
                   series_id_column="series_id" if long_format else None, extra_columns=())
    fast = module.read_well_formed(text.encode(), header, path=str(path), sort=True, gap_factor=1.5,
                                   **columns)
    report = {"dropped": [], "dropped_count": 0, "cut_count": 0}
    slow, _ = module._read_row_by_row(text, header, path=str(path), sort=True,
                                      on_bad_values="fail", gap_factor=1.5, report=report,
                                      **columns)
    return fast, slow


def assert_same_series(fast, slow):
    assert fast is not None, "the columnar reader refused a well-formed file"
    assert [s.series_id for s in fast] == [s.series_id for s in slow]
    for a, b in zip(fast, slow):
        assert list(a.timestamps) == list(b.timestamps) and list(a.lines) == list(b.lines)
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.values, b.values)
        assert a.time_kind == b.time_kind and a.segment_starts == b.segment_starts
        assert a.keys == b.keys


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_columnar_reader_reads_what_the_row_reader_reads(tmp_path, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for index, length in enumerate(rng.integers(3, 40, size=5)):
        start = int(rng.integers(0, 100))
        for point in range(length):
            hour = start + point
            stamp = (f"2024-03-{1 + hour // 24:02d}T{hour % 24:02d}:00:00" if seed != 1
                     else f"{hour}")
            rows.append(f" id{index} ,{stamp}, {rng.normal():.6g}")
    order = rng.permutation(len(rows)) if seed == 2 else np.arange(len(rows))  # out of order too
    path = tmp_path / "long.csv"
    path.write_text("series_id,timestamp,value\r\n" + "".join(rows[i] + "\r\n" for i in order))
    assert_same_series(*read_both(path))
    wide = tmp_path / "wide.csv"
    wide.write_text("timestamp,a,b\n" + "".join(f"2024-01-{d:02d},{d * 0.1!r},{-d}\n"
                                                 for d in range(1, 29)))
    assert_same_series(*read_both(wide, target="b"))


@pytest.mark.parametrize("body", [
    "0,1\n1,\n2,3\n",            # a missing value
    "0,1\n1,nan\n2,3\n",         # NaN
    "0,1\n0,2\n",                # a timestamp twice
    "0,1\n1,2\n9,3\n",           # a gap
    "0,1\n\n1,2\n",              # a blank line
    "0,1\n1,2,3\n",              # a ragged row
    "2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,2\n",  # a time zone
    "2024-02-29,1\n2024-02-30,2\n",  # not a date
    "0,1\n2024-01-01,2\n",       # numbers and dates mixed
])
def test_the_columnar_reader_leaves_every_problem_to_the_row_reader(tmp_path, body):
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n" + body)
    from trainer.data.series import read_well_formed

    assert read_well_formed(path.read_bytes(), ["timestamp", "value"], path=str(path),
                            target="value", timestamp_column="timestamp", series_id_column=None,
                            sort=True, gap_factor=1.5) is None
