"""Splits by time or by position, and the windows of each split.

- **Splits.** Every point goes to train, valid or test by its timestamp: before
  `valid_start`, before `test_start`, or from it on. Without dates the boundaries are the
  timestamps at the fractions `valid_fraction` / `test_fraction` of the distinct timestamps
  of all series, so every series is split at the same time (`split_boundaries`). Or, per
  series (`valid_points` / `test_points`), the last `test_points` points of every series are
  test and the `valid_points` before them valid, wherever each series ends. `split_codes`
  gives each point its split as a code (`SPLIT_CODES`: 0 train, 1 valid, 2 test), never
  decreasing along a series: the series layout stores it as a column.
- **Windows** are `n_inputs + n_outputs` consecutive points of one segment of one series. A
  train window lies wholly in train. A valid or test window has all its targets in its split,
  and may take its inputs from before the split's start, so that every target point of the
  split is forecast; no target ever lies in another split. Windows start every `stride`
  points: train windows from the segment's start, valid and test windows from their split's
  first point, plus one window ending at the split's last point when the stride would skip it.

A worked example of the windowing (n_inputs 2, n_outputs 1, stride 1, points 0..9 with the
validation split starting at point 6 and the test split at point 8):

    train: [0,1 -> 2] [1,2 -> 3] [2,3 -> 4] [3,4 -> 5]
    valid: [4,5 -> 6] [5,6 -> 7]
    test:  [6,7 -> 8] [7,8 -> 9]
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.data.series import (
    DATETIME,
    Series,
    parse_timestamp,
    time_kind_of,
    time_value,
)
from trainer.util.errors import ConfigError

SPLITS = ("train", "valid", "test")
def describe_kind(kind: str) -> str:
    """'date/time' or 'number (a time index)', for messages."""
    return "date/time" if kind == DATETIME else "number (a time index)"


SPLIT_CODES = {split: code for code, split in enumerate(SPLITS)}  # as stored in series shards


def check_split_flags(*, valid_fraction: float, test_fraction: float, valid_start: str,
                      test_start: str, valid_points: int = 0, test_points: int = 0,
                      valid_windows: int = 0, test_windows: int = 0) -> None:
    """The rules of the split flags on their own (before any data is read); a ConfigError."""
    if valid_windows or test_windows:
        if valid_points or test_points or valid_start or test_start:
            raise ConfigError("give --valid_windows/--test_windows (the last horizons of every "
                              "series), or --valid_points/--test_points, or --valid_start/"
                              "--test_start, not two of them")
        return
    if valid_points or test_points:
        if valid_start or test_start:
            raise ConfigError("give --valid_points/--test_points (the last points of every series) "
                              "or --valid_start/--test_start (dates shared by all series), not both")
        if valid_points < 0 or test_points < 0:
            raise ConfigError(f"--valid_points {valid_points} and --test_points {test_points} must "
                              "be >= 0")
        return
    if valid_start or test_start:
        if not (valid_start and test_start):
            raise ConfigError("give both --valid_start and --test_start (or neither, to split by "
                              "--valid_fraction and --test_fraction)")
        starts = {}
        for flag, value in (("--valid_start", valid_start), ("--test_start", test_start)):
            try:
                starts[flag] = parse_timestamp(value)
            except ValueError:
                raise ConfigError(f"{flag} {value!r} is neither an ISO date/time nor a number") from None
        # Of two kinds, the data says which is wrong (split_boundaries); else they must be in order.
        same_kind = type(starts["--valid_start"]) is type(starts["--test_start"])
        if same_kind and starts["--test_start"] < starts["--valid_start"]:
            raise ConfigError(f"--test_start {test_start} is before --valid_start {valid_start}")
    elif valid_fraction + test_fraction >= 1:
        raise ConfigError(f"--valid_fraction {valid_fraction} + --test_fraction {test_fraction} "
                          "leave nothing to train on; their sum must be below 1")


def split_boundaries(series_list: Sequence[Series], *, valid_fraction: float, test_fraction: float,
                     valid_start: str = "", test_start: str = "", valid_points: int = 0,
                     test_points: int = 0, valid_windows: int = 0, test_windows: int = 0,
                     horizon: int = 1) -> Dict[str, Any]:
    """The first timestamp of the valid and the test split (None: that split is empty), or
    the points per series of each (`{"valid_points": N, "test_points": M}`).

    From points per series or dates when given, else at the fractions of the distinct
    timestamps of all series:

    >>> s = Series("a", [str(t) for t in range(10)], [float(t) for t in range(10)], np.zeros(10),
    ...            list(range(2, 12)))
    >>> split_boundaries([s], valid_fraction=0.2, test_fraction=0.2)
    {'valid_start': '6', 'test_start': '8'}

    Backtest windows are points per series too: the last `test_windows` horizons of every series
    are test, the `valid_windows` horizons before them valid, and the trainer evaluates one
    window per horizon (rolling origins `horizon` apart, `evaluation_stride`):

    >>> split_boundaries([s], valid_fraction=0.1, test_fraction=0.1, valid_windows=3,
    ...                  test_windows=1, horizon=2)
    {'valid_points': 6, 'test_points': 2, 'valid_windows': 3, 'test_windows': 1, 'horizon': 2}
    """
    check_split_flags(valid_fraction=valid_fraction, test_fraction=test_fraction,
                      valid_start=valid_start, test_start=test_start, valid_points=valid_points,
                      test_points=test_points, valid_windows=valid_windows,
                      test_windows=test_windows)
    if valid_windows or test_windows:
        return {"valid_points": valid_windows * horizon, "test_points": test_windows * horizon,
                "valid_windows": valid_windows, "test_windows": test_windows, "horizon": horizon}
    if valid_points or test_points:
        return {"valid_points": valid_points, "test_points": test_points}
    if valid_start or test_start:
        kinds = {series.time_kind for series in series_list}
        for flag, value in (("--valid_start", valid_start), ("--test_start", test_start)):
            kind = time_kind_of(parse_timestamp(value))
            if kinds and kind not in kinds:
                raise ConfigError(f"{flag} {value!r} is a {describe_kind(kind)} but the "
                                  f"timestamps are {describe_kind(next(iter(kinds)))}s; give "
                                  "a boundary of the same kind")
        return {"valid_start": valid_start, "test_start": test_start}
    distinct = np.unique(np.concatenate([series.times for series in series_list]))
    count = len(distinct)
    n_test = int(round(count * test_fraction))
    n_valid = int(round(count * valid_fraction))
    n_train = count - n_valid - n_test

    def text_of(time: float) -> str:  # as written, in the first series that has it
        for series in series_list:
            at = int(np.searchsorted(series.times, time))
            if at < len(series.times) and series.times[at] == time:
                return str(series.timestamps[at])
        raise AssertionError(time)

    test = text_of(distinct[n_train + n_valid]) if n_test else None
    valid = text_of(distinct[n_train]) if n_valid else test
    return {"valid_start": valid, "test_start": test}


def evaluation_stride(boundaries: Dict[str, Any], split: str, *, n_outputs: int) -> int:
    """The steps between two evaluated windows of `split` in a series: `n_outputs` (one window
    per horizon, counted back from the split's end) when the split was cut into backtest
    windows (`--valid_windows`, `--test_windows`), else 1 (every window).

    >>> evaluation_stride({"valid_windows": 3, "horizon": 4}, "valid", n_outputs=4)
    4
    >>> evaluation_stride({"valid_points": 12, "test_points": 4}, "valid", n_outputs=4)
    1
    """
    return n_outputs if split != "train" and boundaries.get(f"{split}_windows") else 1


def expected_windows(boundaries: Dict[str, Any], split: str, *, n_outputs: int) -> int:
    """How many backtest windows of `n_outputs` every series should have in `split` (0 when the
    split was not cut into windows).

    >>> expected_windows({"valid_windows": 3, "valid_points": 12, "horizon": 4}, "valid", n_outputs=4)
    3
    >>> expected_windows({"valid_windows": 3, "valid_points": 12, "horizon": 4}, "valid", n_outputs=5)
    2
    """
    if split == "train" or not boundaries.get(f"{split}_windows"):
        return 0
    return boundaries[f"{split}_points"] // n_outputs


def split_codes(series: Series, boundaries: Dict[str, Any]) -> np.ndarray:
    """The split code (`SPLIT_CODES`) of every point of `series`, by `split_boundaries`' result.

    >>> s = Series("a", [str(t) for t in range(6)], [float(t) for t in range(6)], np.zeros(6),
    ...            list(range(2, 8)))
    >>> split_codes(s, {"valid_start": "3", "test_start": "5"}).tolist()
    [0, 0, 0, 1, 1, 2]
    >>> split_codes(s, {"valid_points": 1, "test_points": 2}).tolist()
    [0, 0, 0, 1, 2, 2]
    """
    count = len(series.values)
    if "valid_points" in boundaries:
        test_at = max(count - boundaries["test_points"], 0)
        valid_at = max(test_at - boundaries["valid_points"], 0)
    else:
        ranges = split_ranges(series.times, boundaries)
        valid_at, test_at = ranges["valid"]
    codes = np.full(count, SPLIT_CODES["train"], dtype=np.int8)
    codes[valid_at:test_at] = SPLIT_CODES["valid"]
    codes[test_at:] = SPLIT_CODES["test"]
    return codes


def ranges_of_codes(codes: np.ndarray) -> Dict[str, Tuple[int, int]]:
    """Index ranges [start, end) of train, valid and test from the codes of one segment."""
    valid_at = int(np.searchsorted(codes, SPLIT_CODES["valid"]))
    test_at = int(np.searchsorted(codes, SPLIT_CODES["test"]))
    return {"train": (0, valid_at), "valid": (valid_at, test_at), "test": (test_at, len(codes))}


def split_ranges(times: np.ndarray, boundaries: Dict[str, Optional[str]]
                 ) -> Dict[str, Tuple[int, int]]:
    """Index ranges [start, end) of train, valid and test within one time-ordered segment
    (`times`: its `Series.times`), split by the dates of `boundaries`."""
    def first_at_or_after(stamp: Optional[str]) -> int:
        if stamp is None:
            return len(times)
        return int(np.searchsorted(times, time_value(parse_timestamp(stamp)), side="left"))

    valid_at = first_at_or_after(boundaries["valid_start"])
    test_at = max(first_at_or_after(boundaries["test_start"]), valid_at)
    return {"train": (0, valid_at), "valid": (valid_at, test_at), "test": (test_at, len(times))}


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


def make_windows(series_list: Sequence[Series], codes: Sequence[np.ndarray], *,
                 n_inputs: int, n_outputs: int, stride: int) -> Dict[str, np.ndarray]:
    """Every window of every series: {split: [windows, n_inputs + n_outputs]}; `codes` are the
    `split_codes` of each series."""
    width = n_inputs + n_outputs
    windows: Dict[str, List[np.ndarray]] = {split: [] for split in SPLITS}
    for series, series_codes in zip(series_list, codes):
        for begin, end in series.segments():
            values = series.values[begin:end]
            ranges = ranges_of_codes(series_codes[begin:end])
            for split, starts in window_starts(ranges, n_inputs=n_inputs, n_outputs=n_outputs,
                                               stride=stride).items():
                windows[split].extend(values[start:start + width] for start in starts)
    return {split: np.array(rows, dtype=np.float64).reshape(-1, width)
            for split, rows in windows.items()}


def count_windows(series_list: Sequence[Series], codes: Sequence[np.ndarray], *, n_inputs: int,
                  n_outputs: int, stride: int = 1) -> Dict[str, int]:
    """How many windows `make_windows` would cut of each split, without cutting them."""
    counts = {split: 0 for split in SPLITS}
    for series, series_codes in zip(series_list, codes):
        for begin, end in series.segments():
            ranges = ranges_of_codes(series_codes[begin:end])
            for split, starts in window_starts(ranges, n_inputs=n_inputs, n_outputs=n_outputs,
                                               stride=stride).items():
                counts[split] += len(starts)
    return counts
