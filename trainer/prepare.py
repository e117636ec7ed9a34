"""From a raw series CSV to the trainer's windowed CSV shards, split by time.

    python -m trainer.prepare --input sales.csv --target units --output_dir prepared \\
        --n_inputs 20 --n_outputs 5 --valid_fraction 0.1 --test_fraction 0.1
    python -m trainer.prepare --input 'gs://b/long.csv' --output_dir gs://b/prepared \\
        --n_inputs 20 --n_outputs 5 --valid_start 2024-01-01 --test_start 2024-03-01

Two input shapes, both with a header row:
- wide: a timestamp column (`--timestamp_column`, default `timestamp`) and one or more value
  columns; `--target` picks one (needed when there are several);
- long: `series_id`, `timestamp` and `value` columns, many series in one file (recognised by
  its `series_id` column; `--target` names the value column, default `value`).

Rules:
- **Time order.** Rows are sorted by timestamp within each series (pass `--no-sort` to make
  rows out of order an error instead). A timestamp that appears twice in one series is always
  an error naming both lines. Timestamps are ISO dates/times (`2024-01-31`,
  `2024-01-31T12:00:00`) or plain numbers (a time index), one kind per file.
- **Gaps and bad values.** An empty, NaN or non-numeric value, and a time step longer than
  `--gap_factor` (1.5) times the series' median step, are reported with their line and series. With
  `--on_bad_values fail` (default) the first one stops preparation; with `drop` the bad rows
  are left out and the series is cut there, so that no window spans a gap.
- **Splits.** Every point goes to train, valid or test by its timestamp: before
  `--valid_start`, before `--test_start`, or from it on. Without dates the boundaries are the
  timestamps at the fractions `--valid_fraction` / `--test_fraction` of the distinct
  timestamps of all series, so every series is split at the same time.
- **Windows** are `n_inputs + n_outputs` consecutive points of one series. A train window lies
  wholly in train. A valid or test window has all its targets in its split, and may take its
  inputs from before the split's start, so that every target point of the split is forecast;
  no target ever lies in another split. Windows start every `--stride` points: train windows
  from the series' start, valid and test windows from their split's first point, plus one
  window ending at the split's last point when the stride would skip it.
- **Output**: `OUTPUT_DIR/{train,valid,test}-00000-of-0000N.csv` in the trainer's format, and
  `OUTPUT_DIR/prepare.json` with the boundaries, the counts and the training-split statistics
  (mean, std, min, max, and the in-sample mean absolute error of the naive forecast for MASE).

A worked example of the windowing (n_inputs 2, n_outputs 1, stride 1, points 0..9 with the
validation split starting at point 6 and the test split at point 8):

    train: [0,1 -> 2] [1,2 -> 3] [2,3 -> 4] [3,4 -> 5]
    valid: [4,5 -> 6] [5,6 -> 7]
    test:  [6,7 -> 8] [7,8 -> 9]
"""

import csv  # noqa: I001 (trainer.cli first: it quiets TensorFlow's C++ log)
import dataclasses
import datetime
import io
import json
import logging
import math
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from trainer.cli import run_cli  # first: it quiets TensorFlow's C++ log

import numpy as np
import tensorflow as tf

from trainer.config import _flag, _float_above, _int_at_least, build_flag_parser
from trainer.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SUMMARY_FILENAME = "prepare.json"
BAD_VALUE_ACTIONS = ("fail", "drop")
# A step longer than this many times the series' median step is a gap (--gap_factor).
GAP_FACTOR = 1.5
# Dropped rows listed one by one in prepare.json (the count is always complete).
MAX_LISTED_DROPS = 20

TimeKey = Union[float, datetime.datetime]


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Flags of `python -m trainer.prepare`."""

    input: str = _flag("", "The raw series CSV (local or gs://), with a header row: wide (a "
                       "timestamp column and value columns) or long (series_id, timestamp, value).")
    output_dir: str = _flag("", "Directory for the CSV shards and prepare.json (local or gs://).")
    target: str = _flag("", "Value column to forecast. Wide files: needed when there are several "
                        "value columns. Long files: default 'value'.")
    timestamp_column: str = _flag("timestamp", "Name of the timestamp column.")
    series_id_column: str = _flag("series_id", "Name of the series id column; a file that has "
                                  "it is read as long format.")
    n_inputs: int = _flag(20, "Past values per window (the trainer's --n_inputs).",
                          type=_int_at_least(1))
    n_outputs: int = _flag(5, "Future values per window (the trainer's --n_outputs).",
                           type=_int_at_least(1))
    stride: int = _flag(1, "Points between the starts of two consecutive windows.",
                        type=_int_at_least(1))
    valid_fraction: float = _flag(0.1, "Fraction of the distinct timestamps, after train, in the "
                                  "validation split (ignored with --valid_start).",
                                  type=_float_above(0.0, inclusive=True))
    test_fraction: float = _flag(0.1, "Fraction of the distinct timestamps, at the end, in the test "
                                 "split (ignored with --test_start).",
                                 type=_float_above(0.0, inclusive=True))
    valid_start: str = _flag("", "First timestamp of the validation split (with --test_start; "
                             "replaces the fractions).")
    test_start: str = _flag("", "First timestamp of the test split (with --valid_start).")
    season: int = _flag(1, "Season length for the in-sample seasonal naive MAE saved for MASE "
                        "(the MAE of the naive forecast with season 1 is always saved too).",
                        type=_int_at_least(1))
    shards: int = _flag(4, "Files per split (fewer when a split has fewer windows).",
                        type=_int_at_least(1))
    sort: bool = _flag(True, "Sort rows by timestamp within each series; --no-sort makes rows out "
                       "of order an error.")
    on_bad_values: str = _flag("fail", "What to do with a missing or non-numeric value or a time "
                               "gap: fail (report it and stop) or drop (leave the row out and cut "
                               "the series there).", choices=BAD_VALUE_ACTIONS)
    gap_factor: float = _flag(GAP_FACTOR, "A time step longer than this many times the series' "
                              "median step is a gap (0: no gap check, e.g. for business days).",
                              type=_float_above(0.0, inclusive=True))
    overwrite: bool = _flag(False, "Replace the shards and prepare.json already in --output_dir.")
    verbosity: str = _flag("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclasses.dataclass
class Series:
    """One series in time order: its id, timestamps (as written and as sort keys), values, and
    the CSV line of each point. `segment_starts` are the indices where a gap cuts it."""

    series_id: str
    timestamps: List[str]
    keys: List[TimeKey]
    values: np.ndarray
    lines: List[int]
    segment_starts: List[int] = dataclasses.field(default_factory=lambda: [0])


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


def _read_text(path: str) -> str:
    if not tf.io.gfile.exists(path):
        raise DataError(f"--input {path} does not exist; check the path (and the bucket, for gs://)")
    with tf.io.gfile.GFile(path, "r") as handle:
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
                on_bad_values: str = "fail", gap_factor: float = GAP_FACTOR
                ) -> Tuple[List[Series], Dict[str, Any]]:
    """Read a wide or long CSV into series in time order, checked for gaps and bad values.

    Returns (series, report): report has the file's `format`, the `target` column, and the
    rows `dropped` (with on_bad_values='drop'). Raises DataError naming the file, line, series,
    column and value at fault.
    """
    rows = list(csv.reader(io.StringIO(_read_text(path))))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"{path} is empty; expected a header row, then one row per timestamp")
    header = [cell.strip() for cell in rows[0]]
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
        if not target:
            if len(value_columns) != 1:
                raise ConfigError(f"{path} has {len(value_columns)} value columns "
                                  f"({', '.join(value_columns)}); pick one with --target")
            target = value_columns[0]
        elif target not in value_columns:
            raise ConfigError(f"--target {target!r} is not a column of {path} (its value columns: "
                              f"{', '.join(value_columns) or 'none'})")
    time_index, value_index = header.index(timestamp_column), header.index(target)
    id_index = header.index(series_id_column) if long_format else None

    # Gather (key, timestamp text, value text, line) per series, in file order.
    raw: Dict[str, List[Tuple[TimeKey, str, str, int]]] = {}
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
        raw.setdefault(series_id, []).append((key, stamp, row[value_index].strip(), line))

    report: Dict[str, Any] = {"format": "long" if long_format else "wide", "target": target,
                              "dropped": [], "dropped_count": 0,
                              "cut_count": 0}
    series_list = []
    for series_id, points in raw.items():
        series_list.append(_check_series(series_id, points, path=path, column=target, sort=sort,
                                         on_bad_values=on_bad_values, gap_factor=gap_factor,
                                         report=report))
    if not series_list:
        raise DataError(f"{path} has a header but no data rows")
    return series_list, report


def _check_series(series_id: str, points: List[Tuple[TimeKey, str, str, int]], *, path: str,
                  column: str, sort: bool, on_bad_values: str, gap_factor: float,
                  report: Dict[str, Any]) -> Series:
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
                            f"and {current[3]}); keep one row per timestamp")

    def bad(point: Tuple[TimeKey, str, str, int], reason: str, *, dropped: bool) -> None:
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
    kept: List[Tuple[TimeKey, str, float, int]] = []
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
        kept.append((point[0], point[1], value, point[3]))
    segment_starts = sorted(set(segment_starts))
    return Series(series_id=series_id, timestamps=[p[1] for p in kept], keys=[p[0] for p in kept],
                  values=np.array([p[2] for p in kept], dtype=np.float64),
                  lines=[p[3] for p in kept], segment_starts=segment_starts)


def _difference(later: TimeKey, earlier: TimeKey) -> float:
    """later - earlier, in the time index's units or in seconds."""
    difference = later - earlier
    return difference.total_seconds() if isinstance(difference, datetime.timedelta) else float(difference)


def _format_step(step: float, example: TimeKey) -> str:
    return str(datetime.timedelta(seconds=step)) if isinstance(example, datetime.datetime) else f"{step:g}"


def _kind(key_type: type) -> str:
    return "date/time" if key_type is datetime.datetime else "number (a time index)"


def split_boundaries(series_list: Sequence[Series], *, valid_fraction: float, test_fraction: float,
                     valid_start: str = "", test_start: str = "") -> Dict[str, Optional[str]]:
    """The first timestamp of the valid and the test split (None: that split is empty).

    From dates when given, else at the fractions of the distinct timestamps of all series:

    >>> s = Series("a", [str(t) for t in range(10)], [float(t) for t in range(10)], np.zeros(10),
    ...            list(range(2, 12)))
    >>> split_boundaries([s], valid_fraction=0.2, test_fraction=0.2)
    {'valid_start': '6', 'test_start': '8'}
    """
    if valid_start or test_start:
        if not (valid_start and test_start):
            raise ConfigError("give both --valid_start and --test_start (or neither, to split by "
                              "--valid_fraction and --test_fraction)")
        for flag, value in (("--valid_start", valid_start), ("--test_start", test_start)):
            try:
                parse_timestamp(value)
            except ValueError:
                raise ConfigError(f"{flag} {value!r} is neither an ISO date/time nor a number") from None
        kinds = {type(key) for series in series_list for key in series.keys[:1]}
        for flag, value in (("--valid_start", valid_start), ("--test_start", test_start)):
            kind = type(parse_timestamp(value))
            if kinds and kind not in kinds:
                raise ConfigError(f"{flag} {value!r} is a {_kind(kind)} but the timestamps are "
                                  f"{_kind(next(iter(kinds)))}s; give a boundary of the same kind")
        if parse_timestamp(test_start) < parse_timestamp(valid_start):
            raise ConfigError(f"--test_start {test_start} is before --valid_start {valid_start}")
        return {"valid_start": valid_start, "test_start": test_start}
    if valid_fraction + test_fraction >= 1:
        raise ConfigError(f"--valid_fraction {valid_fraction} + --test_fraction {test_fraction} "
                          "leave nothing to train on; their sum must be below 1")
    distinct: Dict[TimeKey, str] = {}
    for series in series_list:
        for key, text in zip(series.keys, series.timestamps):
            distinct.setdefault(key, text)
    keys = sorted(distinct)
    count = len(keys)
    n_test = int(round(count * test_fraction))
    n_valid = int(round(count * valid_fraction))
    n_train = count - n_valid - n_test
    test = distinct[keys[n_train + n_valid]] if n_test else None
    valid = distinct[keys[n_train]] if n_valid else test
    return {"valid_start": valid, "test_start": test}


def _split_ranges(keys: Sequence[TimeKey], boundaries: Dict[str, Optional[str]]
                  ) -> Dict[str, Tuple[int, int]]:
    """Index ranges [start, end) of train, valid and test within one time-ordered segment."""
    def first_at_or_after(stamp: Optional[str]) -> int:
        if stamp is None:
            return len(keys)
        boundary = parse_timestamp(stamp)
        return next((i for i, key in enumerate(keys) if key >= boundary), len(keys))

    valid_at = first_at_or_after(boundaries["valid_start"])
    test_at = max(first_at_or_after(boundaries["test_start"]), valid_at)
    return {"train": (0, valid_at), "valid": (valid_at, test_at), "test": (test_at, len(keys))}


def window_starts(ranges: Dict[str, Tuple[int, int]], *, n_inputs: int, n_outputs: int,
                  stride: int) -> Dict[str, List[int]]:
    """Start index of every window of each split in one segment (the window's first input).

    >>> window_starts({"train": (0, 6), "valid": (6, 8), "test": (8, 10)}, n_inputs=2,
    ...               n_outputs=1, stride=1)
    {'train': [0, 1, 2, 3], 'valid': [4, 5], 'test': [6, 7]}
    >>> window_starts({"train": (0, 6), "valid": (6, 6), "test": (6, 11)}, n_inputs=2,
    ...               n_outputs=2, stride=2)
    {'train': [0, 2], 'valid': [], 'test': [4, 6, 7]}
    """
    width = n_inputs + n_outputs
    train_end = ranges["train"][1]
    starts = {"train": list(range(0, train_end - width + 1, stride))}
    for split in ("valid", "test"):
        low, high = ranges[split]
        first_targets = [t for t in range(low, high - n_outputs + 1, stride) if t >= n_inputs]
        last = high - n_outputs  # a window ending at the split's last point
        if last >= max(low, n_inputs) and (not first_targets or first_targets[-1] != last):
            first_targets.append(last)
        starts[split] = [t - n_inputs for t in first_targets]
    return starts


def make_windows(series_list: Sequence[Series], boundaries: Dict[str, Optional[str]], *,
                 n_inputs: int, n_outputs: int, stride: int) -> Dict[str, np.ndarray]:
    """Every window of every series: {split: [windows, n_inputs + n_outputs]}."""
    width = n_inputs + n_outputs
    windows: Dict[str, List[np.ndarray]] = {split: [] for split in SPLITS}
    for series in series_list:
        ends = series.segment_starts[1:] + [len(series.values)]
        for begin, end in zip(series.segment_starts, ends):
            keys, values = series.keys[begin:end], series.values[begin:end]
            ranges = _split_ranges(keys, boundaries)
            for split, starts in window_starts(ranges, n_inputs=n_inputs, n_outputs=n_outputs,
                                               stride=stride).items():
                windows[split].extend(values[start:start + width] for start in starts)
    return {split: np.array(rows, dtype=np.float64).reshape(-1, width)
            for split, rows in windows.items()}


def training_statistics(series_list: Sequence[Series], boundaries: Dict[str, Optional[str]], *,
                        season: int) -> Dict[str, Any]:
    """Mean, std (population), min and max of the training points of all series, and the
    in-sample MAE of the naive forecast (season 1) and of the seasonal naive one.

    The naive MAE is the mean of |y[t] - y[t - season]| over training points whose
    predecessor `season` steps back is in the same segment: the scale of MASE.
    """
    values: List[np.ndarray] = []
    differences: Dict[int, List[np.ndarray]] = {s: [] for s in sorted({1, season})}
    for series in series_list:
        ends = series.segment_starts[1:] + [len(series.values)]
        for begin, end in zip(series.segment_starts, ends):
            train_end = _split_ranges(series.keys[begin:end], boundaries)["train"][1]
            train = series.values[begin:begin + train_end]
            values.append(train)
            for lag in differences:
                differences[lag].append(np.abs(train[lag:] - train[:-lag]) if len(train) > lag
                                        else np.zeros(0))
    everything = np.concatenate(values) if values else np.zeros(0)
    if not len(everything):
        raise DataError("the training split is empty; lower --valid_fraction/--test_fraction or "
                        "move --valid_start later")
    naive_mae = {}
    for lag, parts in differences.items():
        joined = np.concatenate(parts)
        naive_mae[str(lag)] = float(joined.mean()) if len(joined) else None
    return {"count": int(len(everything)), "mean": float(everything.mean()),
            "std": float(everything.std()), "min": float(everything.min()),
            "max": float(everything.max()), "in_sample_naive_mae": naive_mae}


def format_row(values: Sequence[float]) -> str:
    """One CSV row in the trainer's format; repr keeps every digit.

    >>> format_row([1.0, 0.25, -3.5])
    '1.0,0.25,-3.5'
    """
    return ",".join(repr(float(value)) for value in values)


def shard_paths(output_dir: str, split: str, shards: int) -> List[str]:
    """['DIR/train-00000-of-00002.csv', 'DIR/train-00001-of-00002.csv'] for shards=2."""
    return [f"{output_dir}/{split}-{i:05d}-of-{shards:05d}.csv" for i in range(shards)]


def _existing_outputs(output_dir: str) -> List[str]:
    if not tf.io.gfile.isdir(output_dir):
        return []
    found = []
    for split in SPLITS:
        found += tf.io.gfile.glob(f"{output_dir}/{split}-*-of-*.csv")
    summary = f"{output_dir}/{SUMMARY_FILENAME}"
    return found + ([summary] if tf.io.gfile.exists(summary) else [])


def write_shards(windows: Dict[str, np.ndarray], *, output_dir: str, shards: int) -> Dict[str, List[str]]:
    """Write each split's windows as min(shards, windows) CSV files, in order."""
    written: Dict[str, List[str]] = {}
    for split, rows in windows.items():
        if not len(rows):
            written[split] = []
            continue
        count = min(shards, len(rows))
        written[split] = shard_paths(output_dir, split, count)
        for path, part in zip(written[split], np.array_split(rows, count)):
            with tf.io.gfile.GFile(path, "w") as handle:
                handle.write("".join(format_row(row) + "\n" for row in part))
    return written


def read_summary(path: str) -> Dict[str, Any]:
    """The prepare.json at `path` (or in the directory `path`)."""
    if tf.io.gfile.isdir(path):
        path = path.rstrip("/") + "/" + SUMMARY_FILENAME
    if not tf.io.gfile.exists(path):
        raise ConfigError(f"{path} does not exist; give the prepare.json that trainer.prepare wrote")
    with tf.io.gfile.GFile(path, "r") as handle:
        text = handle.read()
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error})") from error
    if "statistics" not in summary:
        raise ConfigError(f"{path} has no 'statistics'; is it a prepare.json from trainer.prepare?")
    return summary


def prepare(config: PrepareConfig) -> Dict[str, Any]:
    """Read, check, split, window and write; returns what prepare.json holds."""
    if not config.input or not config.output_dir:
        raise ConfigError("give --input (the raw series CSV) and --output_dir")
    output_dir = config.output_dir.rstrip("/")
    existing = _existing_outputs(output_dir)
    if existing and not config.overwrite:
        raise ConfigError(f"{output_dir} already holds prepared data ({existing[0]}, ...); use "
                          "another --output_dir or pass --overwrite to replace it")
    series_list, report = read_series(
        config.input, target=config.target, timestamp_column=config.timestamp_column,
        series_id_column=config.series_id_column, sort=config.sort,
        on_bad_values=config.on_bad_values, gap_factor=config.gap_factor)
    if report["dropped"]:
        logger.warning("left out %d rows of %s and cut its series at %d gaps (see 'dropped' in "
                       "%s), for example: %s", report["dropped_count"], config.input,
                       report["cut_count"], SUMMARY_FILENAME, report["dropped"][0])
    width = config.n_inputs + config.n_outputs
    longest = max(len(series.values) for series in series_list)
    if longest < width:
        raise DataError(f"{config.input}: the longest series has {longest} points, fewer than one "
                        f"window of --n_inputs {config.n_inputs} + --n_outputs {config.n_outputs} "
                        f"= {width}; lower them or give a longer series")
    boundaries = split_boundaries(series_list, valid_fraction=config.valid_fraction,
                                  test_fraction=config.test_fraction,
                                  valid_start=config.valid_start, test_start=config.test_start)
    windows = make_windows(series_list, boundaries, n_inputs=config.n_inputs,
                           n_outputs=config.n_outputs, stride=config.stride)
    wanted = {"train": True, "valid": boundaries["valid_start"] != boundaries["test_start"],
              "test": boundaries["test_start"] is not None}
    for split in SPLITS:
        if wanted[split] and not len(windows[split]):
            raise DataError(f"{config.input}: the {split} split has no complete window of "
                            f"{width} points (--n_inputs {config.n_inputs} + --n_outputs "
                            f"{config.n_outputs}); give a longer series, larger split fractions or "
                            "smaller --n_inputs/--n_outputs")
    statistics = training_statistics(series_list, boundaries, season=config.season)
    if config.overwrite:
        for path in existing:
            tf.io.gfile.remove(path)
    tf.io.gfile.makedirs(output_dir)
    files = write_shards(windows, output_dir=output_dir, shards=config.shards)
    summary = {
        "input": config.input, "format": report["format"], "target": report["target"],
        "series": len(series_list), "n_inputs": config.n_inputs, "n_outputs": config.n_outputs,
        "stride": config.stride, "season": config.season, "boundaries": boundaries,
        "splits": {split: {"windows": int(len(windows[split])), "files": files[split]}
                   for split in SPLITS},
        "points": int(sum(len(series.values) for series in series_list)),
        "dropped_count": report["dropped_count"], "cut_count": report["cut_count"],
        "dropped": report["dropped"],
        "statistics": statistics,
    }
    path = f"{output_dir}/{SUMMARY_FILENAME}"
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps(summary, indent=2) + "\n")
    return summary


def summarize(summary: Dict[str, Any]) -> str:
    """The CLI's closing lines."""
    counts = "  ".join(f"{split} {summary['splits'][split]['windows']}" for split in SPLITS)
    first_files = {split: summary["splits"][split]["files"] for split in SPLITS}
    patterns = "  ".join(f"{split}: {files[0].rsplit('-', 3)[0]}-*.csv"
                         for split, files in first_files.items() if files)
    return (f"windows: {counts}  ({summary['series']} series, {summary['points']} points, "
            f"{summary['dropped_count']} rows dropped)\n{patterns}\n"
            f"training mean {summary['statistics']['mean']:.6g}  std "
            f"{summary['statistics']['std']:.6g}; boundaries {json.dumps(summary['boundaries'])}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_flag_parser(PrepareConfig, prog="python -m trainer.prepare",
                               description="Cut a raw series CSV into the trainer's windowed "
                               "CSV shards, split by time, with prepare.json.")
    return run_cli(lambda config: summarize(prepare(config)), argv, parser=parser,
                   config_class=PrepareConfig)


if __name__ == "__main__":
    sys.exit(main())
