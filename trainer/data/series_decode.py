"""Series shards decoded into columns, and the windows of a split found and gathered in them:
what the tf.data pipeline (`trainer.data.series_pipeline`), the shard survey
(`trainer.data.series_survey`) and the evaluation reads (`trainer.data.series_reads`) share.

A series shard (`trainer.data.prepared`) holds whole series, one row per point. Each file is
read whole and decoded into columns by pyarrow's CSV reader (`decode_series_csv`, one call per
file); the window starts of a split are found for the whole file at once (`window_starts`: a
start is kept when its window lies in one segment of one series and its targets in the split),
and the windows at those starts are one gather by index (`gather_windows`), turned into
features as serving turns them (`window_features`). No Python runs per window or per row.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import pyarrow as pa
from pyarrow import csv as pa_csv

from trainer.data.covariates import Covariate
from trainer.data.prepared import SERIES_COLUMNS
from trainer.data.schema import COVARIATE_KEY, build_features, split_features_and_labels
from trainer.data.windows import SPLIT_CODES
from trainer.util.lazy import tf

# Not a split of the data: the windows whose targets lie in train or valid, what a refit of a
# chosen model trains on (`trainer.refit`), so that it learns from the most recent points too.
TRAIN_AND_VALID = "train_and_valid"
# The type of each of SERIES_COLUMNS: series, segment, split, time, target (names: the module
# loads without TensorFlow, `trainer.util.lazy`).
COLUMN_TYPES = ("int64", "int64", "int64", "float64", "float32")


def _column_plan(covariate_count: int, with_time: bool) -> Tuple[List[str], List[str]]:
    """The names of a shard's columns, and those to decode (without `with_time`, no time)."""
    names = [*SERIES_COLUMNS, *[f"covariate_{i}" for i in range(covariate_count)]]
    return names, [name for name in names if with_time or name != "time"]


def decode_series_csv(data: bytes, *, covariate_count: int = 0, with_time: bool = True
                      ) -> Dict[str, np.ndarray]:
    """A whole shard's bytes -> its columns as NumPy (`SERIES_COLUMNS`, and `covariates`
    [points, covariate_count] when it has some), header dropped, blank lines skipped. Without
    `with_time` the time column is skipped (training needs no time): less to convert.

    pyarrow's CSV reader, on every core: a few times faster than `tf.io.decode_csv` (the
    first batch of a run waits on it). A value missing or not a number raises
    `pyarrow.ArrowInvalid` (no value stands in for another).
    """
    names, kept = _column_plan(covariate_count, with_time)
    types = dict(zip(names, [*(pa.from_numpy_dtype(np.dtype(name)) for name in COLUMN_TYPES),
                             *[pa.float32()] * covariate_count]))
    table = pa_csv.read_csv(
        pa.BufferReader(data),
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
        convert_options=pa_csv.ConvertOptions(column_types=types, include_columns=kept,
                                              null_values=[], strings_can_be_null=False))
    columns = {name: table.column(name).to_numpy() for name in kept if name in SERIES_COLUMNS}
    if covariate_count:
        columns["covariates"] = np.stack(
            [table.column(f"covariate_{i}").to_numpy() for i in range(covariate_count)], axis=1)
    return columns


def read_series_file(path: str, *, covariate_count: int = 0, with_time: bool = True
                     ) -> Dict[str, np.ndarray]:
    """Read and decode one shard (local or gs://) into NumPy columns (`decode_series_csv`)."""
    with tf.io.gfile.GFile(path, "rb") as handle:
        data = handle.read()
    return decode_series_csv(data, covariate_count=covariate_count, with_time=with_time)


def load_series_file(path: tf.Tensor, *, covariate_count: int = 0, with_time: bool = True
                     ) -> Dict[str, tf.Tensor]:
    """`read_series_file` as an op of a tf.data function: the path tensor -> column tensors."""
    names, kept = _column_plan(covariate_count, with_time)
    types = dict(zip(names, [*map(tf.as_dtype, COLUMN_TYPES), *[tf.float32] * covariate_count]))
    keys = [name for name in kept if name in SERIES_COLUMNS] + (["covariates"] if covariate_count else [])

    def read(name: bytes) -> List[np.ndarray]:
        columns = read_series_file(name.decode(), covariate_count=covariate_count, with_time=with_time)
        return [columns[key] for key in keys]

    values = tf.numpy_function(read, [path], [types.get(key, tf.float32) for key in keys],
                               stateful=False)
    columns = {}
    for key, value in zip(keys, values):
        value.set_shape([None, covariate_count] if key == "covariates" else [None])
        columns[key] = value
    return columns


def window_starts(columns: Dict[str, tf.Tensor], *, n_inputs: int, n_outputs: int,
                  split: str, stride: int = 1) -> tf.Tensor:
    """Rows where a window of `split` starts: within one series and segment, targets in `split`;
    with `stride` > 1 only every `stride`-th, counted back from the window that ends at the last
    point of the split in its series (backtest windows: rolling origins a horizon apart).

    >>> columns = {"series": tf.constant([0, 0, 0, 0, 1, 1, 1], tf.int64),
    ...            "segment": tf.zeros([7], tf.int64),
    ...            "split": tf.constant([0, 0, 0, 1, 0, 0, 1], tf.int64)}
    >>> window_starts(columns, n_inputs=1, n_outputs=1, split="train").numpy().tolist()
    [0, 1, 4]
    >>> window_starts(columns, n_inputs=1, n_outputs=1, split="valid").numpy().tolist()
    [2, 5]
    >>> columns = {"series": tf.zeros([7], tf.int64), "segment": tf.zeros([7], tf.int64),
    ...            "split": tf.constant([0, 0, 1, 1, 1, 1, 2], tf.int64)}
    >>> window_starts(columns, n_inputs=1, n_outputs=2, split="valid", stride=2).numpy().tolist()
    [1, 3]
    >>> window_starts(columns, n_inputs=1, n_outputs=2, split=TRAIN_AND_VALID).numpy().tolist()
    [0, 1, 2, 3]
    """
    width = n_inputs + n_outputs
    count = tf.maximum(tf.size(columns["series"], out_type=tf.int64) - width + 1, 0)
    begin = tf.range(count, dtype=tf.int64)
    end = begin + width - 1
    first_target = begin + n_inputs

    def at(name: str, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(columns[name], index)

    if split == TRAIN_AND_VALID:  # splits never decrease: the end's code bounds the targets'
        in_split = tf.less_equal(at("split", end), SPLIT_CODES["valid"])
    else:
        code = tf.constant(SPLIT_CODES[split], tf.int64)
        # tf.equal, not ==: in the Estimator's graph mode, == compares the tensors' identity.
        in_split = tf.equal(at("split", first_target), code) & tf.equal(at("split", end), code)
    keep = (tf.equal(at("series", begin), at("series", end))
            & tf.equal(at("segment", begin), at("segment", end)) & in_split)
    if stride > 1:
        # The last row of the run (same series, segment and split) that holds each window's end.
        rows = tf.size(columns["series"], out_type=tf.int64)
        changed = tf.concat([tf.ones([tf.minimum(rows, 1)], tf.bool), tf.reduce_any(tf.stack([
            tf.not_equal(columns[name][1:], columns[name][:-1])
            for name in ("series", "segment", "split")]), axis=0)], axis=0)
        run = tf.cumsum(tf.cast(changed, tf.int64)) - 1
        run_last = tf.math.unsorted_segment_max(tf.range(rows, dtype=tf.int64), run,
                                                tf.maximum(tf.reduce_max(run) + 1, 1))
        keep &= tf.equal(tf.math.floormod(tf.gather(run_last, tf.gather(run, end)) - end, stride), 0)
    return tf.boolean_mask(begin, tf.reshape(keep, [-1]))


def gather_windows(values: tf.Tensor, starts: tf.Tensor, *, width: int) -> tf.Tensor:
    """Values [points] (or [points, channels]) of the windows at `starts` (any shape S) ->
    [*S, width] (or [*S, width, channels]), one gather."""
    return tf.gather(values, starts[..., None] + tf.range(width, dtype=tf.int64))


def point_values(columns: Dict[str, tf.Tensor]) -> tf.Tensor:
    """What a window gathers of each point: the target [points], or with covariates the target
    then the covariates [points, 1 + covariates]."""
    if "covariates" not in columns:
        return columns["target"]
    return tf.concat([columns["target"][:, None], columns["covariates"]], axis=1)


def window_features(windows: tf.Tensor, *, n_inputs: int, covariates: Sequence[Covariate] = ()
                    ) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
    """Windows [..., width] (or [..., width, 1 + covariates]) -> (features, labels
    [..., n_outputs]): the target's inputs as `rawdata`, each kind of covariate under its key
    (`trainer.data.schema.COVARIATE_KEYS`), through `build_features` as serving does."""
    if not covariates:
        return split_features_and_labels(windows, n_inputs=n_inputs)
    def columns(kind: str, categorical: bool) -> List[int]:
        return [1 + i for i, c in enumerate(covariates)
                if c.kind == kind and c.categorical == categorical]

    steps = {"past": windows[..., :n_inputs, :], "future": windows, "static": windows[..., 0, :]}
    covariate_features = {key: tf.gather(steps[kind], columns(kind, categorical), axis=-1)
                          for (kind, categorical), key in COVARIATE_KEY.items()
                          if columns(kind, categorical)}
    features = build_features(windows[..., :n_inputs, 0], **covariate_features)
    return features, windows[..., n_inputs:, 0]

