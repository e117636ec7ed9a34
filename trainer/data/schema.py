"""What a row is: its CSV text, its checks, and the model features it becomes.

A row is one window of a series: `n_inputs` past values followed by `n_outputs` future
values, comma-separated, no header (a row of inputs alone, for prediction, has `n_inputs`):

    0.12,0.35,0.51,...,0.80,0.77

This module is the one owner of that format. `format_rows` is its only writer (prepare's
shards, the synthetic data, the benchmark's and the tests' data); `parse_row` is its only
checker, worded by `describe_row_problem` for training and by `read_rows` for evaluation and
prediction; `decode_csv_values` is the vectorized decoder of the input pipeline, which accepts
exactly the rows that `parse_row` accepts. `build_features` is the one transform from the raw
values to the model's features, used by the training input and the serving receiver alike.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.util.cli import split_patterns
from trainer.util.errors import DataError
from trainer.util.lazy import tf

# The serving signature's input name and the features' key: the raw values of the window's
# inputs, in the series' units (the model scales them inside the graph).
FEATURE_KEY = "rawdata"
# Evaluation only (series shards): each window's series and that series' in-sample scales
# (`trainer.data.series_scales`), so that the metrics score every series on its own scale.
SERIES_INDEX_KEY = "series_index"
MASE_SCALE_KEY = "mase_scale"
RMSSE_SCALE_KEY = "rmsse_scale"
EVALUATION_KEYS = (SERIES_INDEX_KEY, MASE_SCALE_KEY, RMSSE_SCALE_KEY)


# The covariates' feature keys (and serving inputs), present only in a model trained with them:
# past numbers [batch, n_inputs, P], future numbers [batch, n_inputs + n_outputs, F] (the
# inputs' steps, then the horizon's), past and future categories as vocabulary ids of the same
# shapes, static numbers [batch, S] and static categories as vocabulary ids [batch, C].
PAST_KEY = "past_covariates"
FUTURE_KEY = "future_covariates"
PAST_CATEGORIES_KEY = "past_categories"
FUTURE_CATEGORIES_KEY = "future_categories"
STATIC_KEY = "static_covariates"
CATEGORIES_KEY = "static_categories"
COVARIATE_KEYS = (PAST_KEY, FUTURE_KEY, PAST_CATEGORIES_KEY, FUTURE_CATEGORIES_KEY, STATIC_KEY,
                  CATEGORIES_KEY)
ID_KEYS = (PAST_CATEGORIES_KEY, FUTURE_CATEGORIES_KEY, CATEGORIES_KEY)  # int64
# The feature of each kind of covariate: (kind, categorical) -> its key, in this order.
COVARIATE_KEY = {("past", False): PAST_KEY, ("future", False): FUTURE_KEY,
                 ("past", True): PAST_CATEGORIES_KEY, ("future", True): FUTURE_CATEGORIES_KEY,
                 ("static", False): STATIC_KEY, ("static", True): CATEGORIES_KEY}


def build_features(rawdata: tf.Tensor, **covariates: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Raw past values [batch, n_inputs] and covariates (by `COVARIATE_KEYS`) -> the model's
    features dict (training and serving)."""
    features = {FEATURE_KEY: tf.cast(rawdata, tf.float32)}
    for key, value in covariates.items():
        if key not in COVARIATE_KEYS:
            raise ValueError(f"unknown covariate feature {key!r}; expected one of {COVARIATE_KEYS}")
        features[key] = tf.cast(value, tf.int64 if key in ID_KEYS else tf.float32)
    return features


def split_features_and_labels(values: tf.Tensor, *, n_inputs: int
                              ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """Rows [..., n_inputs + n_outputs] -> (features, labels [..., n_outputs])."""
    return build_features(values[..., :n_inputs]), values[..., n_inputs:]


def format_row(values: Sequence[float], *, decimals: Optional[int] = None) -> str:
    """One row as CSV text (no line end): every digit (repr) by default, or `decimals` places.

    >>> format_row([1.0, 0.25, -3.5])
    '1.0,0.25,-3.5'
    >>> format_row([1.0, 0.25], decimals=3)
    '1.000,0.250'
    """
    if decimals is None:
        return ",".join(repr(float(value)) for value in values)
    return ",".join(f"{float(value):.{decimals}f}" for value in values)


def format_rows(rows: np.ndarray, *, decimals: Optional[int] = None) -> str:
    """Rows [rows, values] as CSV text, one line each, every line ended by a newline.

    >>> format_rows(np.array([[1.0, -0.5], [0.25, 2.0]]), decimals=5)
    '1.00000,-0.50000\\n0.25000,2.00000\\n'
    """
    return "".join(format_row(row, decimals=decimals) + "\n" for row in np.asarray(rows).tolist())


@dataclasses.dataclass(frozen=True)
class RowProblem:
    """Why a CSV line is not a valid row: `kind` is empty, width, not_a_number or not_finite."""

    kind: str
    values: int = 0  # how many values the line has
    expected: str = ""  # the widths allowed, as text ("10", "10 or 7")
    position: int = 0  # the bad value, from 1
    field: str = ""  # the bad value's text

    def describe(self) -> str:
        """'has 9 values, expected 10', 'value 3 is 'x', not a number', ..."""
        if self.kind == "empty":
            return "is empty"
        if self.kind == "width":
            return f"has {self.values} values, expected {self.expected}"
        if self.kind == "not_a_number":
            return f"value {self.position} is {self.field!r}, not a number"
        return f"value {self.position} is {self.field.strip()!r}; NaN and infinity are not allowed"


def parse_row(line: str, *, widths: Sequence[int]) -> Tuple[Optional[List[float]], Optional[RowProblem]]:
    """(values, None) for a valid row of one of `widths` values, else (None, the problem).

    >>> parse_row("1,2.5", widths=[2])
    ([1.0, 2.5], None)
    >>> parse_row("1,2,x", widths=[3])[1].describe()
    "value 3 is 'x', not a number"
    """
    if not line.strip():
        return None, RowProblem("empty")
    fields = line.rstrip("\r\n").split(",")
    if len(fields) not in widths:
        return None, RowProblem("width", values=len(fields),
                                expected=" or ".join(str(width) for width in widths))
    values = []
    for position, field in enumerate(fields, start=1):
        try:
            value = float(field)
        except ValueError:
            return None, RowProblem("not_a_number", values=len(fields), position=position, field=field)
        if not math.isfinite(value):
            return None, RowProblem("not_finite", values=len(fields), position=position, field=field)
        values.append(value)
    return values, None


def describe_row_problem(line: str, *, n_inputs: int, n_outputs: int) -> Optional[str]:
    """What is wrong with one training CSV line, or None when it is a valid row.

    >>> describe_row_problem("1,2,x", n_inputs=2, n_outputs=1)
    "value 3 is 'x', not a number"
    >>> describe_row_problem("1,2", n_inputs=2, n_outputs=1)
    'has 2 values, expected 3 (--n_inputs 2 + --n_outputs 1)'
    """
    _, problem = parse_row(line, widths=[n_inputs + n_outputs])
    if problem is None:
        return None
    if problem.kind == "width":
        return f"{problem.describe()} (--n_inputs {n_inputs} + --n_outputs {n_outputs})"
    return problem.describe()


def expand_file_patterns(patterns: Sequence[str], *, flag: str) -> List[str]:
    """Every file matched by the patterns, in sorted order; an error names a pattern matching none.

    For example ["data/train-*.csv"] -> ["data/train-0.csv", "data/train-1.csv"].
    """
    if not patterns:
        raise DataError(f"{flag} is empty; give one or more file patterns")
    files: List[str] = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern))
        if not matched:
            raise DataError(f"{flag}: pattern {pattern!r} matches no file; check the path "
                            "(and the bucket, for gs://)")
        files.extend(path for path in matched if path not in files)
    return files


def check_files(files: Sequence[str], *, n_inputs: int, n_outputs: int) -> None:
    """Fail before training on directories, empty files and first rows of the wrong shape.

    Only the first row of each file is read: the full scan happens in `find_first_bad_row`,
    once the pipeline has hit a bad row, so that good data costs nothing extra.
    """
    for path in files:
        stat = tf.io.gfile.stat(path)
        if stat.is_directory:
            raise DataError(f"{path} is a directory; use a file pattern such as {path}/*.csv")
        if stat.length == 0:
            raise DataError(f"{path} is empty (0 bytes); remove it or narrow the file pattern")
        with tf.io.gfile.GFile(path, "r") as handle:
            first_line = handle.readline()
        problem = describe_row_problem(first_line, n_inputs=n_inputs, n_outputs=n_outputs)
        if problem:
            raise DataError(f"row 1 of {path} {problem}. Rows must be {n_inputs} inputs then "
                            f"{n_outputs} outputs, comma-separated, with no header")


def find_first_bad_row(files: Sequence[str], *, n_inputs: int, n_outputs: int) -> Optional[str]:
    """Scan the files for the first row that cannot be decoded: 'row R of FILE has ...' or None."""
    for path in files:
        with tf.io.gfile.GFile(path, "r") as handle:
            for row_number, line in enumerate(handle, start=1):
                problem = describe_row_problem(line, n_inputs=n_inputs, n_outputs=n_outputs)
                if problem:
                    return f"row {row_number} of {path} {problem}"
    return None


def decode_csv_values(lines: tf.Tensor, *, n_values: int) -> tf.Tensor:
    """CSV lines [rows] -> values [rows, n_values], float32, in one vectorized op.

    A line with another number of values, a field that is no number, NaN or inf fails the op
    (InvalidArgumentError); the caller then finds the file and row with `find_first_bad_row`.
    """
    required_float = tf.constant([], dtype=tf.float32)  # empty default: a missing value is an error
    columns = tf.io.decode_csv(lines, record_defaults=[required_float] * n_values)
    return tf.debugging.check_numerics(tf.stack(columns, axis=1), "CSV rows hold NaN or inf")


def read_rows(patterns: str, *, n_inputs: int, n_outputs: int, flag: str, model_path: str,
              allow_inputs_only: bool) -> Dict[str, object]:
    """Rows of files (for evaluation and prediction, in memory) ->
    {"files", "inputs" [rows, n_inputs], "actual" [rows, n_outputs] or None}.

    Every row must have n_inputs + n_outputs values (or, with `allow_inputs_only`, every row
    n_inputs); blank lines are skipped; an error names the file, the row and the model's shape.
    """
    files = expand_file_patterns(split_patterns(patterns), flag=flag)
    widths = [n_inputs + n_outputs] + ([n_inputs] if allow_inputs_only else [])
    rows: List[List[float]] = []
    width: Optional[int] = None
    for path in files:
        with tf.io.gfile.GFile(path, "r") as handle:
            for number, line in enumerate(handle, start=1):
                values, problem = parse_row(line, widths=widths if width is None else [width])
                if problem is None:
                    width = len(values)
                    rows.append(values)
                elif problem.kind == "width":
                    raise DataError(
                        f"row {number} of {path} {problem.describe()}: the model at {model_path} "
                        f"reads n_inputs {n_inputs} and forecasts n_outputs {n_outputs}. Prepare "
                        f"the rows with --n_inputs {n_inputs} --n_outputs {n_outputs}, or use the "
                        "model trained on them")
                elif problem.kind == "not_a_number":
                    raise DataError(f"row {number} of {path}: {problem.field!r} is not a number")
                elif problem.kind == "not_finite":
                    raise DataError(f"row {number} of {path} holds NaN or infinity")
    if not rows:
        raise DataError(f"{flag} {patterns!r}: the files hold no rows")
    array = np.array(rows, dtype=np.float64)
    actual = array[:, n_inputs:] if width == n_inputs + n_outputs else None
    return {"files": files, "inputs": array[:, :n_inputs], "actual": actual}
