"""The survey of series shards before training: every file read once and checked, its windows
counted.

`survey_series_files` reads every file once, with the decoder of the tf.data pipeline
(`trainer.data.series_decode`): it checks the header, the values and the order (each series in
one run of rows, time increasing, segments and splits never decreasing), names the file and line
of the first problem, and counts the windows of each split and the series too short for one.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from trainer.data.covariates import Covariate
from trainer.data.prepared import SERIES_COLUMNS
from trainer.data.series_decode import read_series_file, window_starts
from trainer.data.series_pipeline import POOL_FILES
from trainer.data.series_scales import ScaleSums
from trainer.data.windows import SPLIT_CODES, SPLITS
from trainer.util.errors import DataError
from trainer.util.lazy import tf


@dataclasses.dataclass
class Survey:
    """What `survey_series_files` found: windows per split, series and how many are too short."""

    windows: Dict[str, int]
    windows_per_file: Dict[str, Dict[str, int]]
    series: int
    points: int
    too_short: int  # series with no training window of this size
    too_short_examples: List[str]
    series_count: int = 0  # series indices run from 0 to this - 1
    # Per split with backtest windows: the series with fewer windows than asked.
    short_of_windows: Dict[str, List[int]] = dataclasses.field(default_factory=dict)


def _first_bad_line(path: str, columns: Sequence[str]) -> Optional[str]:
    """The first line of a shard that is not numbers of the right kinds, described."""
    with tf.io.gfile.GFile(path, "r") as handle:
        lines = handle.read().split("\n")
    for number, line in enumerate(lines[1:], start=2):
        cells = line.strip().split(",")
        if not line.strip():
            continue
        if len(cells) != len(columns):
            return (f"line {number} of {path} has {len(cells)} values, expected "
                    f"{len(columns)} ({','.join(columns)})")
        for name, cell in zip(columns, cells):
            try:
                value = float(cell)
            except ValueError:
                return f"line {number} of {path}: column {name!r} is {cell!r}, not a number"
            if name in ("series", "segment", "split") and value != int(value):
                return f"line {number} of {path}: column {name!r} is {cell!r}, not a whole number"
    return None


def _check_order(path: str, columns: Dict[str, np.ndarray], *, series_count: Optional[int]) -> None:
    """Each series in one run of rows, time increasing and segment and split never decreasing
    within it, split codes known; a DataError naming the line (header = line 1)."""
    series = columns["series"]
    line = lambda row: row + 2  # noqa: E731 (rows start after the header line)
    bad_code = np.flatnonzero((columns["split"] < 0) | (columns["split"] >= len(SPLITS)))
    if len(bad_code):
        row = bad_code[0]
        raise DataError(f"line {line(row)} of {path}: split {columns['split'][row]} is not one of "
                        f"0 (train), 1 (valid), 2 (test)")
    outside = np.flatnonzero((series < 0) | (series >= (series_count or np.iinfo(np.int64).max)))
    if len(outside):
        row = outside[0]
        raise DataError(f"line {line(row)} of {path}: series {series[row]} is not an index of "
                        + (f"prepare.json's series_ids (0 to {series_count - 1})" if series_count
                           else "a series (0, 1, ...)"))
    same = series[1:] == series[:-1]
    starts = np.flatnonzero(~same) + 1
    run_ids = series[np.concatenate([[0], starts])] if len(series) else series
    if len(np.unique(run_ids)) != len(run_ids):
        seen: Dict[int, int] = {}
        for row in np.concatenate([[0], starts]):
            if series[row] in seen:
                raise DataError(f"line {line(row)} of {path}: series {series[row]} starts again "
                                f"after other series (it began on line {line(seen[series[row]])}); "
                                "keep the rows of each series together, sorted by time")
            seen[series[row]] = row
    for name, strictly in (("time", True), ("segment", False), ("split", False)):
        step = np.diff(columns[name])
        wrong = np.flatnonzero(same & ((step <= 0) if strictly else (step < 0)))
        if len(wrong):
            row = wrong[0] + 1
            order = "increase" if strictly else "never decrease"
            raise DataError(f"line {line(row)} of {path}: {name} {columns[name][row]!r} after "
                            f"{columns[name][row - 1]!r} in series {series[row]}; within a "
                            f"series, {name} must {order} (sort the rows by series and time)")


def _check_categories(path: str, columns: Dict[str, np.ndarray],
                      covariates: Sequence[Covariate]) -> None:
    """A categorical covariate holds ids of its vocabulary; a DataError naming the line."""
    for position, covariate in enumerate(covariates):
        if not covariate.categorical:
            continue
        ids = columns["covariates"][:, position]
        wrong = np.flatnonzero((ids < 0) | (ids >= len(covariate.vocabulary)) | (ids != np.round(ids)))
        if len(wrong):
            raise DataError(f"line {wrong[0] + 2} of {path}: {covariate.name} {ids[wrong[0]]!r} is "
                            f"not an id of its vocabulary in prepare.json (0 to "
                            f"{len(covariate.vocabulary) - 1})")


def survey_series_files(files: Sequence[str], *, n_inputs: int, n_outputs: int,
                        series_ids: Optional[Sequence[str]] = None,
                        covariates: Sequence[Covariate] = (),
                        scale_sums: Optional[ScaleSums] = None,
                        strides: Optional[Dict[str, int]] = None,
                        expected: Optional[Dict[str, int]] = None) -> Survey:
    """Check every shard and count its windows per split (see the module's docstring); each
    file's points are added to `scale_sums` (the series' in-sample scales) when given. A split
    of `strides` counts every so many windows (backtest windows), and the series with fewer
    than `expected` windows of a split (but some of its points) are counted and named."""
    strides, expected = strides or {}, expected or {}
    short_of = {split: [] for split in expected}
    windows = {split: 0 for split in SPLITS}
    per_file: Dict[str, Dict[str, int]] = {}
    series_total = points = too_short = 0
    highest = -1
    file_points: List[int] = []
    examples: List[str] = []
    names = [*SERIES_COLUMNS, *(covariate.name for covariate in covariates)]
    header = ",".join(names)
    for path in files:
        with tf.io.gfile.GFile(path, "r") as handle:
            first = handle.readline().strip()
        if first != header:
            raise DataError(f"{path}: its first line is {first[:80]!r}, expected the header "
                            f"{header!r} (the columns of a series shard, in this order)")
        try:
            arrays = read_series_file(path, covariate_count=len(covariates))
        except pa.ArrowInvalid as error:
            problem = _first_bad_line(path, names)
            raise DataError(f"{problem or path + ': ' + str(error).splitlines()[0]}; fix the "
                            "shard (see docs/data.md, Data layouts)") from error
        columns = {name: tf.constant(value) for name, value in arrays.items()}
        _check_categories(path, arrays, covariates)
        _check_order(path, arrays, series_count=len(series_ids) if series_ids else None)
        if scale_sums is not None:
            scale_sums.add(arrays)
        if len(arrays["series"]):
            highest = max(highest, int(arrays["series"].max()))
        per_file[path] = {}
        for split in SPLITS:
            starts = window_starts(columns, n_inputs=n_inputs, n_outputs=n_outputs, split=split,
                                   stride=strides.get(split, 1))
            per_file[path][split] = int(tf.size(starts))
            windows[split] += per_file[path][split]
            if expected.get(split) and len(arrays["series"]):
                in_split = np.unique(arrays["series"][arrays["split"] == SPLIT_CODES[split]])
                found = np.bincount(arrays["series"][starts.numpy()],
                                    minlength=int(arrays["series"].max()) + 1)
                short_of[split] += [int(s) for s in in_split if found[s] < expected[split]]
            if split == "train":
                with_window = set(arrays["series"][starts.numpy()].tolist())
        present = np.unique(arrays["series"])
        short = [int(s) for s in present if int(s) not in with_window]
        too_short += len(short)
        for index in short[:max(0, 5 - len(examples))]:
            examples.append(str(series_ids[index]) if series_ids else str(index))
        series_total += len(present)
        points += len(arrays["series"])
        file_points.append(len(arrays["series"]))
    largest = sorted(file_points, reverse=True)[:POOL_FILES]
    if sum(largest) + sum(largest) // 8 >= 2 ** 31:  # the pool is padded by up to 1/8
        raise DataError(f"the {len(largest)} largest series files hold {sum(largest)} points, more "
                        f"than the 2**31 (less 1/8 of padding) that a training pool of {POOL_FILES} "
                        "files indexes; prepare the data with more --shards")
    return Survey(windows=windows, windows_per_file=per_file, series=series_total, points=points,
                  too_short=too_short, too_short_examples=examples,
                  series_count=len(series_ids) if series_ids else highest + 1,
                  short_of_windows=short_of)
