"""Raw series: a wide or long CSV with a header read into checked series in time order.

Two input shapes, both with a header row:
- wide: a timestamp column (default `timestamp`) and one or more value columns; `target`
  picks one (needed when there are several);
- long: `series_id`, `timestamp` and `value` columns, many series in one file (recognised by
  its `series_id` column; `target` names the value column, default `value`).

`read_series` sorts each series by time (or, with `sort=False`, fails on rows out of order),
fails on a timestamp twice in one series, and fails on or drops (`on_bad_values`) missing or
non-numeric values and gaps in time, cutting the series there into segments. Timestamps are
ISO dates/times or plain numbers (a time index), one kind per file. `trainer.prepare` and
`trainer.predict --series` read series this way.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import logging
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from trainer.util.errors import ConfigError, DataError
from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

BAD_VALUE_ACTIONS = ("fail", "drop")
# A step longer than this many times the series' median step is a gap (--gap_factor).
GAP_FACTOR = 1.5
# Dropped rows listed one by one in prepare.json (the count is always complete).
MAX_LISTED_DROPS = 20

TimeKey = Union[float, datetime.datetime]
DATETIME, INDEX = "datetime", "index"  # the two kinds of timestamps (Series.time_kind)
EPOCH = datetime.datetime(1970, 1, 1)
EPOCH64 = np.datetime64("1970-01-01T00:00:00", "us")


def time_value(key: TimeKey) -> float:
    """A time key as a number: seconds since 1970-01-01 UTC for a datetime, else itself.

    >>> time_value(parse_timestamp("1970-01-02")), time_value(parse_timestamp("17"))
    (86400.0, 17.0)
    """
    if isinstance(key, datetime.datetime):
        return (key - EPOCH) / datetime.timedelta(seconds=1)
    return float(key)


def time_kind_of(key: TimeKey) -> str:
    """DATETIME or INDEX, the kind of a parsed timestamp."""
    return DATETIME if isinstance(key, datetime.datetime) else INDEX


@dataclasses.dataclass
class Series:
    """One series in time order: its id, timestamps (as written), their `times` (seconds since
    1970-01-01 UTC for dates, `time_kind` "datetime"; the number itself for a time index,
    "index"), values, and the CSV line of each point. `segment_starts` are the indices where a
    gap cuts it."""

    series_id: str
    timestamps: Sequence[str]
    times: np.ndarray
    values: np.ndarray
    lines: Sequence[int]
    segment_starts: List[int] = dataclasses.field(default_factory=lambda: [0])
    time_kind: str = "index"
    # Other columns asked for (covariates), as written (stripped text), one per point.
    extra: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # With future_rows: the rows after the last value (an empty target), whose other columns
    # (future covariates) are known: {"timestamps", "times", "lines", "extra"}.
    future: Optional[Dict[str, Any]] = None

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64)

    @property
    def keys(self) -> List[TimeKey]:
        """The times as sort keys: datetimes (naive UTC) or numbers, one per point."""
        if self.time_kind == DATETIME:
            return (EPOCH64 + (self.times * 1e6).round().astype("timedelta64[us]")).astype(object).tolist()
        return self.times.tolist()

    def segments(self) -> List[Tuple[int, int]]:
        """The [begin, end) index ranges of the unbroken parts, in order."""
        ends = self.segment_starts[1:] + [len(self.values)]
        return list(zip(self.segment_starts, ends))


def parse_timestamp(text: str) -> TimeKey:
    """A sortable key for a timestamp: a number (time index) or a datetime.

    >>> parse_timestamp("17")
    17.0
    >>> parse_timestamp("2024-01-31")
    datetime.datetime(2024, 1, 31, 0, 0)
    """
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise ValueError(f"{text!r} is not a finite time index")
    parsed = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if parsed.tzinfo is not None:  # one comparable kind: naive UTC
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def _read_bytes(path: str) -> bytes:
    if not tf.io.gfile.exists(path):
        raise DataError(f"--input {path} does not exist; check the path (and the bucket, for gs://)")
    with tf.io.gfile.GFile(path, "rb") as handle:
        return handle.read()


def _parse_value(text: str) -> Optional[float]:
    """The float in `text`, or None when it is empty, NaN, infinite or not a number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_series(path: str, *, target: str = "", timestamp_column: str = "timestamp",
                series_id_column: str = "series_id", sort: bool = True,
                on_bad_values: str = "fail", gap_factor: float = GAP_FACTOR,
                extra_columns: Sequence[str] = (), future_rows: bool = False
                ) -> Tuple[List[Series], Dict[str, Any]]:
    """Read a wide or long CSV into series in time order, checked for gaps and bad values.

    Returns (series, report): report has the file's `format`, the `target` column, and the
    rows `dropped` (with on_bad_values='drop'). The text of each of `extra_columns` comes along
    in each series' `extra`, point by point (a column that is not in the file is a DataError).
    With `future_rows`, the rows at the end of a series with an empty value are its `future`
    (the horizon of a forecast, with its future covariates), not missing values.
    Raises DataError naming the file, line, series,
    column and value at fault.
    """
    data = _read_bytes(path)
    first_end = data.find(b"\n")
    first_row = next(csv.reader([(data if first_end < 0 else data[:first_end]).decode("utf-8")]), [])
    if not any(cell.strip() for cell in first_row):
        raise DataError(f"{path} is empty; expected a header row, then one row per timestamp")
    header = [cell.strip() for cell in first_row]
    if timestamp_column not in header:
        raise DataError(f"{path} has no timestamp column {timestamp_column!r} (its columns: "
                        f"{', '.join(header)}); name it with --timestamp_column")
    long_format = series_id_column in header
    if long_format:
        target = target or "value"
        if target not in header:
            raise DataError(f"{path} is in long format (it has a {series_id_column!r} column) but "
                            f"has no value column {target!r} (its columns: {', '.join(header)}); "
                            "name it with --target")
    else:
        value_columns = [name for name in header if name != timestamp_column]
        id_columns = likely_id_columns(data, header, exclude=[timestamp_column, target])
        id_hint = (f"; did you mean --series_id_column {id_columns[0]}? (a long file: one row per "
                   f"series and timestamp, its series named by the column {id_columns[0]!r})"
                   if id_columns else "")
        if not target:
            if len(value_columns) != 1:
                raise ConfigError(f"{path} has {len(value_columns)} value columns "
                                  f"({', '.join(value_columns)}); pick one with --target"
                                  f"{id_hint.replace('; did', ', or did')}")
            target = value_columns[0]
        elif target not in value_columns:
            raise ConfigError(f"--target {target!r} is not a column of {path} (its value columns: "
                              f"{', '.join(value_columns) or 'none'})")
    report: Dict[str, Any] = {"format": "long" if long_format else "wide", "target": target,
                              "dropped": [], "dropped_count": 0,
                              "cut_count": 0}
    missing = [name for name in extra_columns if name not in header]
    if missing:
        raise DataError(f"{path} has no column {missing[0]!r} (its columns: {', '.join(header)}); "
                        "check the covariate flags")
    columns = dict(target=target, timestamp_column=timestamp_column,
                   series_id_column=series_id_column if long_format else None,
                   extra_columns=tuple(extra_columns))
    fast = (None if future_rows else
            read_well_formed(data, header, path=path, sort=sort, gap_factor=gap_factor, **columns))
    if fast is not None:
        return fast, report
    # Something to report or drop, or a shape the columnar reader does not take: row by row.
    return _read_row_by_row(data.decode("utf-8"), header, path=path, sort=sort,
                            on_bad_values=on_bad_values, gap_factor=gap_factor, report=report,
                            future_rows=future_rows, duplicate_hint="" if long_format else id_hint,
                            **columns)


# Column names that usually name a series: a wide file with one is probably a long file whose
# id column is not --series_id_column.
ID_COLUMN_NAMES = ("id", "series", "unique_id", "item_id", "item", "key", "store", "sku", "name")


def likely_id_columns(data: bytes, header: Sequence[str], *, exclude: Sequence[str]) -> List[str]:
    """The columns of a file read as wide that look like a series id (text values in its first
    rows, or an id's name): what a message suggests as --series_id_column.

    >>> likely_id_columns(b"id,timestamp,value\\na,1,2.5\\n", ["id", "timestamp", "value"],
    ...                   exclude=["timestamp"])
    ['id']
    """
    head = data[:65536].decode("utf-8", errors="replace").splitlines()[1:50]
    rows = [row for row in csv.reader(head) if len(row) == len(header)]
    found = []
    for index, name in enumerate(header):
        if name in exclude:
            continue
        texts = [row[index].strip() for row in rows if row[index].strip()]
        named = name.lower() in ID_COLUMN_NAMES or name.lower().endswith("_id")
        if named or any(_parse_value(text) is None for text in texts):
            found.append(name)
    return found


def _read_row_by_row(text: str, header: List[str], *, path: str, target: str,
                     timestamp_column: str, series_id_column: Optional[str],
                     extra_columns: Sequence[str], sort: bool,
                     on_bad_values: str, gap_factor: float, report: Dict[str, Any],
                     future_rows: bool = False, duplicate_hint: str = ""
                     ) -> Tuple[List[Series], Dict[str, Any]]:
    """The reader that finds, words and drops every problem, one row at a time
    (`duplicate_hint`: what a timestamp twice in a series adds to its message)."""
    rows = list(csv.reader(io.StringIO(text)))
    time_index, value_index = header.index(timestamp_column), header.index(target)
    id_index = header.index(series_id_column) if series_id_column else None
    extra_indices = [header.index(name) for name in extra_columns]

    # Gather (key, timestamp text, value text, line) per series, in file order.
    raw: Dict[str, List[Tuple[Any, ...]]] = {}
    key_kind: Optional[type] = None
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataError(f"line {line} of {path} has {len(row)} columns, the header has "
                            f"{len(header)}; fix that line")
        series_id = row[id_index].strip() if id_index is not None else target
        stamp = row[time_index].strip()
        try:
            key = parse_timestamp(stamp)
        except ValueError:
            raise DataError(f"line {line} of {path}: timestamp {stamp!r} in column "
                            f"{timestamp_column!r} is neither an ISO date/time nor a number") from None
        if key_kind is None:
            key_kind = type(key)
        elif type(key) is not key_kind:
            raise DataError(f"line {line} of {path}: timestamp {stamp!r} mixes numbers and dates "
                            "in one file; use one kind")
        raw.setdefault(series_id, []).append((key, stamp, row[value_index].strip(), line,
                                              tuple(row[i].strip() for i in extra_indices)))

    series_list = []
    for series_id, points in raw.items():
        series_list.append(_check_series(series_id, points, path=path, column=target,
                                         extra_columns=extra_columns, sort=sort,
                                         future_rows=future_rows,
                                         on_bad_values=on_bad_values, gap_factor=gap_factor,
                                         report=report, duplicate_hint=duplicate_hint))
    if not series_list:
        raise DataError(f"{path} has a header but no data rows")
    return series_list, report


def read_well_formed(data: bytes, header: List[str], *, path: str, target: str,
                     timestamp_column: str, series_id_column: Optional[str], sort: bool,
                     gap_factor: float, extra_columns: Sequence[str] = ()
                     ) -> Optional[List[Series]]:
    """The series of a file with nothing to report, read by column (pyarrow and NumPy); None
    when there is anything to report, drop or word (a bad value, a gap, a duplicate timestamp,
    rows out of order with sort=False, blank rows, ragged rows, time zones, ...): the row by
    row reader then reads it and says what is wrong, exactly as before. Both readers give the
    same series for the files this one takes (tests/test_series.py compares them).
    """
    import pyarrow as pa  # noqa: I001 (imported here: only preparation needs it)
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if len(set(header)) != len(header):
        return None
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowTypeError):
        return None
    count = _data_line_count(data)
    if table.num_rows == 0 or count != table.num_rows:
        return None  # no rows, blank lines inside, or quoted line ends: rows and lines differ
    lines = np.arange(2, count + 2)
    values, _ = _cast(table[target], pa.float64())
    if values is None or not np.isfinite(values).all():
        return None
    stamps = table[timestamp_column]
    first = str(stamps[0]).strip()
    kind = INDEX if _parse_value(first) is not None else DATETIME
    if kind == INDEX:
        times, trimmed = _cast(stamps, pa.float64())
        if times is None or not np.isfinite(times).all():
            return None
    else:  # ISO without a time zone: Arrow refuses time zones and 2024-02-30
        moments, trimmed = _cast(stamps, pa.timestamp("us"))
        if moments is None:
            return None
        times = (moments - EPOCH64) / np.timedelta64(1, "s")
    if trimmed:
        stamps = pc.utf8_trim_whitespace(stamps)
    if series_id_column:
        ids = pc.dictionary_encode(table[series_id_column]).combine_chunks()
        names = [str(name).strip() for name in ids.dictionary.to_pylist()]
        if len(set(names)) != len(names):
            return None  # ids that differ only by spaces
        codes = ids.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        codes, names = np.zeros(len(values), dtype=np.int64), [target]
    same = codes[1:] == codes[:-1]
    late = np.zeros(len(names), dtype=np.int64)
    if (same & (np.diff(times) > 0)).sum() == len(same) - (len(names) - 1):
        order = np.arange(len(codes))  # each series in one run of rows, in time order
    else:  # each series in file order, then in time order (both sorts stable)
        by_series = np.argsort(codes, kind="stable")
        grouped = codes[by_series][1:] == codes[by_series][:-1]
        backwards = grouped & (np.diff(times[by_series]) < 0)
        if backwards.any() and not sort:
            return None
        late = np.bincount(codes[by_series][1:][backwards], minlength=len(names))
        order = np.lexsort((times, codes))
    times_sorted, codes_sorted = times[order], codes[order]
    same_sorted = codes_sorted[1:] == codes_sorted[:-1]
    if (same_sorted & (np.diff(times_sorted) <= 0)).any():
        return None  # a timestamp twice in a series
    if gap_factor > 0 and _has_gap(times_sorted, same_sorted, gap_factor=gap_factor):
        return None
    bounds = np.concatenate([[0], np.flatnonzero(~same_sorted) + 1, [len(order)]])
    stamp_text = np.asarray(stamps.to_numpy(zero_copy_only=False), dtype=object)
    extra_text = {name: np.asarray(pc.utf8_trim_whitespace(table[name]).to_numpy(
        zero_copy_only=False), dtype=object) for name in extra_columns}
    series_list = []
    for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        code = int(codes_sorted[begin])
        if late[code]:
            logger.info("series %r of %s: %d rows out of time order; sorted by timestamp",
                        names[code], path, int(late[code]))
        rows = order[begin:end]
        series_list.append(Series(series_id=names[code], timestamps=stamp_text[rows],
                                  times=times_sorted[begin:end], values=values[rows],
                                  lines=lines[rows], time_kind=kind,
                                  extra={name: text[rows] for name, text in extra_text.items()}))
    return series_list


def _cast(column: Any, to_type: Any) -> Tuple[Optional[np.ndarray], bool]:
    """(a column of strings cast by Arrow as NumPy, whether spaces around values had to be
    trimmed); (None, _) when a value does not parse."""
    import pyarrow as pa  # noqa: I001
    import pyarrow.compute as pc

    for trim in (False, True):
        try:
            return pc.cast(pc.utf8_trim_whitespace(column) if trim else column,
                           to_type).to_numpy(zero_copy_only=False), trim
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None, True


def _has_gap(times: np.ndarray, same_series: np.ndarray, *, gap_factor: float) -> bool:
    """True when a step within a series is longer than `gap_factor` times its series' median
    step (`times` sorted by series then time; `same_series[i]`: rows i and i + 1 are of one
    series). Regular series are cleared at once (no step above `gap_factor` times the series'
    shortest); for the others the medians come from the steps sorted within each series."""
    steps = np.diff(times)[same_series]
    if not len(steps):
        return False
    group = np.cumsum(~same_series)[same_series]  # which series each step belongs to
    starts = np.concatenate([[0], np.flatnonzero(np.diff(group)) + 1])
    if (np.maximum.reduceat(steps, starts) <= gap_factor * np.minimum.reduceat(steps, starts)).all():
        return False
    order = np.lexsort((steps, group))
    sorted_steps = steps[order]
    counts = np.diff(np.concatenate([starts, [len(sorted_steps)]]))
    medians = (sorted_steps[starts + (counts - 1) // 2] + sorted_steps[starts + counts // 2]) / 2
    return bool((sorted_steps > gap_factor * np.repeat(medians, counts)).any())


def _data_line_count(data: bytes) -> Optional[int]:
    """The number of data rows after the header, or None when a blank line lies among them
    (the row by row reader skips those and words the rest)."""
    if data.startswith((b"\n", b"\r\n")):
        return None
    inner = data.rstrip(b"\r\n")
    if b"\n\n" in inner or b"\n\r\n" in inner:
        return None
    return inner.count(b"\n")


def _check_series(series_id: str, points: List[Tuple[Any, ...]], *, path: str,
                  column: str, extra_columns: Sequence[str], sort: bool, on_bad_values: str,
                  gap_factor: float, future_rows: bool = False,
                  report: Dict[str, Any], duplicate_hint: str = "") -> Series:
    """Order one series' points, fail on duplicates, and fail on or drop bad values and gaps."""
    where = f"series {series_id!r} of {path}"
    for previous, current in zip(points, points[1:]):
        if current[0] < previous[0] and not sort:
            raise DataError(f"{where} is not sorted by time: line {current[3]} ({current[1]}) comes "
                            f"after line {previous[3]} ({previous[1]}); sort the file, or drop "
                            "--no-sort to let prepare sort it")
    out_of_order = sum(current[0] < previous[0] for previous, current in zip(points, points[1:]))
    if out_of_order:
        logger.info("%s: %d rows out of time order; sorted by timestamp", where, out_of_order)
    ordered = sorted(points, key=lambda point: point[0])  # stable: duplicates keep file order
    for previous, current in zip(ordered, ordered[1:]):
        if current[0] == previous[0]:
            raise DataError(f"{where} has the timestamp {current[1]!r} twice (lines {previous[3]} "
                            f"and {current[3]}); keep one row per timestamp{duplicate_hint}")
    future = None
    if future_rows:
        known = len(ordered)
        while known and not ordered[known - 1][2]:
            known -= 1
        if known < len(ordered):
            rows = ordered[known:]
            future = {"timestamps": [p[1] for p in rows],
                      "times": np.array([time_value(p[0]) for p in rows], dtype=np.float64),
                      "lines": [p[3] for p in rows],
                      "extra": {name: np.array([p[4][i] for p in rows], dtype=object)
                                for i, name in enumerate(extra_columns)}}
            ordered = ordered[:known]

    def bad(point: Tuple[Any, ...], reason: str, *, dropped: bool) -> None:
        if on_bad_values == "fail":
            raise DataError(f"line {point[3]} of {path} ({where}, timestamp {point[1]}): {reason}. "
                            "Fix the file, or pass --on_bad_values drop to leave such rows out "
                            "and cut the series there")
        report["dropped_count" if dropped else "cut_count"] += 1
        if len(report["dropped"]) < MAX_LISTED_DROPS:
            report["dropped"].append({"series_id": series_id, "line": point[3], "timestamp": point[1],
                                      "reason": reason if dropped else "series cut: " + reason})

    steps = [_difference(b[0], a[0]) for a, b in zip(ordered, ordered[1:])]
    median_step = float(np.median(steps)) if steps else 0.0
    kept: List[Tuple[Any, ...]] = []
    segment_starts = [0]
    cut = False
    for index, point in enumerate(ordered):
        if index > 0 and gap_factor > 0 and steps[index - 1] > gap_factor * median_step:
            bad(point, f"a gap in time: the previous timestamp is {ordered[index - 1][1]}, "
                f"{_format_step(steps[index - 1], point[0])} before, while the median step is "
                f"{_format_step(median_step, point[0])}", dropped=False)
            cut = True
        value = _parse_value(point[2])
        if value is None:
            kind = "missing" if not point[2] or point[2].lower() == "nan" else "not a finite number"
            bad(point, f"value {point[2]!r} in column {column!r} is {kind}", dropped=True)
            cut = True
            continue
        if cut and kept:
            segment_starts.append(len(kept))
        cut = False
        kept.append((point[0], point[1], value, point[3], point[4]))
    segment_starts = sorted(set(segment_starts))
    kind = time_kind_of(ordered[0][0]) if ordered else INDEX
    return Series(series_id=series_id, timestamps=[p[1] for p in kept],
                  times=np.array([time_value(p[0]) for p in kept], dtype=np.float64),
                  values=np.array([p[2] for p in kept], dtype=np.float64),
                  lines=[p[3] for p in kept], segment_starts=segment_starts, time_kind=kind,
                  extra={name: np.array([p[4][i] for p in kept], dtype=object)
                         for i, name in enumerate(extra_columns)}, future=future)


def _difference(later: TimeKey, earlier: TimeKey) -> float:
    """later - earlier, in the time index's units or in seconds."""
    difference = later - earlier
    return difference.total_seconds() if isinstance(difference, datetime.timedelta) else float(difference)


def _format_step(step: float, example: TimeKey) -> str:
    return str(datetime.timedelta(seconds=step)) if isinstance(example, datetime.datetime) else f"{step:g}"
