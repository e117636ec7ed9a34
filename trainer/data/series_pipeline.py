"""Windows cut from series shards inside tf.data: the input of a `--data_dir` of the series layout.

A series shard (`trainer.data.prepared`) holds whole series, one row per point. Each file is
read whole and decoded into columns by pyarrow's CSV reader (`decode_series_csv`, one call per
file); the window starts of a split are found for the whole file at once (`window_starts`: a
start is kept when its window lies in one segment of one series and its targets in the split),
and a batch of windows is one gather: in training an XLA gather of whole slices
(`make_window_slicer`), in evaluation [batch, n_inputs + n_outputs] values by index
(`gather_windows`). No Python runs per window or per row, and no window is stored:
`--n_inputs` and `--n_outputs` are free at training time.

- Training (`make_series_input_fn(training=True)`) takes the files of this process (one file
  in `num_workers` when there are enough, as the row pipeline does), decodes each once and
  keeps it in memory for the run, takes them in a new order each pass, pools up to
  `POOL_FILES` of them, shuffles the starts of the pool together (across series and files)
  and cuts them into whole batches of `batch_size * steps_per_run`; the starts left over
  that fill no whole batch are left out of that pass only, a different few each pass (a pool
  smaller than one batch is repeated to fill one).
- Evaluation makes one ordered pass over every window of the split, stride 1, none dropped.

`survey_series_files` reads every file once before training, with the same decoder: it checks
the header, the values and the order (each series in one run of rows, time increasing,
segments and splits never decreasing), names the file and line of the first problem, and
counts the windows of each split and the series too short for one.
"""

import dataclasses
import functools
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import tensorflow as tf
from pyarrow import csv as pa_csv
from tensorflow.compiler.tf2xla.python import xla as tf_xla

from trainer.data.covariates import Covariate, covariates_of
from trainer.data.prepared import (
    SERIES_COLUMNS,
    SERIES_LAYOUT,
    SERIES_SHARD_PREFIX,
    check_layout,
    read_summary,
)
from trainer.data.schema import (
    COVARIATE_KEY,
    MASE_SCALE_KEY,
    RMSSE_SCALE_KEY,
    SERIES_INDEX_KEY,
    build_features,
    split_features_and_labels,
)
from trainer.data.series_scales import ScaleSums, SeriesScales
from trainer.data.windows import SPLIT_CODES, SPLITS
from trainer.util.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

POOL_FILES = 8  # files whose windows are shuffled together in training
# Not a split of the data: the windows whose targets lie in train or valid, what a refit of a
# chosen model trains on (`trainer.refit`), so that it learns from the most recent points too.
TRAIN_AND_VALID = "train_and_valid"
# Files decoded at once in training: one decode of a large file already takes a core, and more
# at once only hold more decoded copies in memory before the first batch.
MAX_PARALLEL_DECODES = 2
# The type of each of SERIES_COLUMNS: series, segment, split, time, target.
COLUMN_TYPES = (tf.int64, tf.int64, tf.int64, tf.float64, tf.float32)


@dataclasses.dataclass(frozen=True)
class PreparedSeries:
    """A prepared directory of the series layout: its prepare.json and its shard files."""

    data_dir: str
    summary: Dict[str, Any]
    files: List[str]
    covariates: Tuple[Covariate, ...] = ()


def open_prepared(data_dir: str, *, summary: Optional[Dict[str, Any]] = None) -> PreparedSeries:
    """Read DIR/prepare.json (unless its `summary` is given, read already), check it is of the
    series layout, and list its shards.

    The shards are prepare.json's `files` (names in the directory, or full paths), or, when it
    lists none (shards written by other tools), every `DIR/series-*.csv`.
    """
    data_dir = data_dir.rstrip("/")
    source = f"{data_dir}/prepare.json"
    summary = read_summary(data_dir) if summary is None else summary
    check_layout(summary, layout=SERIES_LAYOUT, source=source)
    covariates = tuple(covariates_of(summary, source=source))
    expected = [*SERIES_COLUMNS, *(covariate.name for covariate in covariates)]
    columns = summary.get("columns", expected)
    if list(columns) != expected:
        raise ConfigError(f"{source}: its columns {columns} are not {expected}, the columns of a "
                          "series shard followed by its covariates")
    names = summary.get("files") or []
    files = ([name if "/" in name else f"{data_dir}/{name}" for name in names] if names
             else sorted(tf.io.gfile.glob(f"{data_dir}/{SERIES_SHARD_PREFIX}-*.csv")))
    missing = [path for path in files if not tf.io.gfile.exists(path)]
    if missing:
        raise DataError(f"{source} lists {missing[0]}, which does not exist; prepare the data "
                        "again or copy the whole directory")
    if not files:
        raise DataError(f"{data_dir} holds no {SERIES_SHARD_PREFIX}-*.csv shards; write them "
                        "beside prepare.json (see docs/data.md, Data layouts)")
    return PreparedSeries(data_dir=data_dir, summary=summary, files=files, covariates=covariates)


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
    types = dict(zip(names, [*(pa.from_numpy_dtype(t.as_numpy_dtype) for t in COLUMN_TYPES),
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
    types = dict(zip(names, [*COLUMN_TYPES, *[tf.float32] * covariate_count]))
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


def slice_windows(values: tf.Tensor, starts: tf.Tensor, *, offset: int, width: int) -> tf.Tensor:
    """Values [points] (or [points, channels]) of the windows [start + offset, start + offset +
    width) at `starts` (any shape S) -> [*S, width] (or [*S, width, channels]).

    One XLA gather of whole slices (TensorFlow's `tf2xla` gather, as jax2tf uses it): each
    window is one contiguous copy, no index per value. Call it in a function compiled with
    XLA (`make_window_slicer`); the starts must lie in `values` (XLA clamps, never fails).
    """
    starts = tf.cast(starts, tf.int32)[..., None] + offset
    rank = starts.shape.rank - 1  # the dimensions of S
    numbers = tf_xla.xla_data_pb2.GatherDimensionNumbers(
        offset_dims=list(range(rank, rank + values.shape.rank)), collapsed_slice_dims=[],
        start_index_map=[0], index_vector_dim=rank)
    slice_sizes = [width, *values.shape[1:]]
    windows = tf_xla.gather(values, starts, dimension_numbers=numbers, slice_sizes=slice_sizes,
                            indices_are_sorted=False)
    windows.set_shape([*starts.shape[:-1], *slice_sizes])  # not inferred by the op itself
    return windows


def make_window_slicer(*, n_inputs: int, n_outputs: int) -> Callable[[tf.Tensor, tf.Tensor],
                                                                     Tuple[tf.Tensor, tf.Tensor]]:
    """(values, starts) -> (inputs [*S, n_inputs(, channels)], targets [*S, n_outputs(, ...)]),
    compiled with XLA: two slice gathers (`slice_windows`), a few times faster than `tf.gather`
    by index. XLA compiles once per shape of `values`: the training pools pad theirs
    (`padded_length`)."""
    @tf.function(jit_compile=True, autograph=False)
    def slicer(values: tf.Tensor, starts: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        return (slice_windows(values, starts, offset=0, width=n_inputs),
                slice_windows(values, starts, offset=n_inputs, width=n_outputs))
    return slicer


def padded_length(length: tf.Tensor) -> tf.Tensor:
    """`length` rounded up to a multiple of 1/8 of its highest power of two (at most 12.5%
    more, and a few shapes per doubling, each compiled once).

    >>> [int(padded_length(tf.constant(n, tf.int64))) for n in (0, 5, 17, 1000, 1024, 1025)]
    [0, 5, 18, 1024, 1024, 1152]
    """
    length = tf.cast(length, tf.int64)
    bits = tf.cast(tf.math.floor(tf.math.log(tf.cast(tf.maximum(length, 1), tf.float64))
                                 / np.log(2.0)), tf.int64)
    step = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.maximum(bits - 3, 0))
    return (length + step - 1) // step * step


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


def _file_windows(path: tf.Tensor, *, n_inputs: int, n_outputs: int, split: str,
                  covariate_count: int) -> Tuple[tf.Tensor, tf.Tensor]:
    columns = load_series_file(path, covariate_count=covariate_count, with_time=False)
    return point_values(columns), window_starts(columns, n_inputs=n_inputs, n_outputs=n_outputs,
                                                split=split)


def _file_windows_with_series(path: tf.Tensor, *, n_inputs: int, n_outputs: int, split: str,
                              covariate_count: int, stride: int
                              ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """As `_file_windows` (every `stride`-th window), and the series of each start."""
    columns = load_series_file(path, covariate_count=covariate_count, with_time=False)
    starts = window_starts(columns, n_inputs=n_inputs, n_outputs=n_outputs, split=split,
                           stride=stride)
    return point_values(columns), starts, tf.gather(columns["series"], starts)


def series_features(features: Dict[str, tf.Tensor], series: tf.Tensor, scales: SeriesScales
                    ) -> Dict[str, tf.Tensor]:
    """`features` with each window's series index and that series' scales (evaluation)."""
    mase = tf.constant(scales.mae_season, tf.float64)
    rmsse = tf.constant(scales.mse_1, tf.float64)
    return {**features, SERIES_INDEX_KEY: series, MASE_SCALE_KEY: tf.gather(mase, series),
            RMSSE_SCALE_KEY: tf.gather(rmsse, series)}


def _pool_groups(target: tf.RaggedTensor, starts: tf.RaggedTensor, *, group: int, seed: int
                 ) -> Tuple[tf.Tensor, tf.Tensor]:
    """One pool of files -> its values (padded) and its windows' starts in one shuffled order,
    as whole groups [groups, group]."""
    values = target.values
    # Padded to a length of few kinds: the XLA gather compiles once per length.
    padding = [[0, padded_length(tf.shape(values, out_type=tf.int64)[0]) - tf.shape(
        values, out_type=tf.int64)[0]]] + [[0, 0]] * (values.shape.rank - 1)
    values = tf.pad(values, padding)
    offsets = tf.repeat(target.row_splits[:-1], starts.row_lengths())
    pooled = tf.random.shuffle(starts.values + offsets, seed=seed)
    count = tf.size(pooled, out_type=tf.int64)
    # A pool with fewer windows than one group is repeated until it fills one.
    copies = tf.where(count > 0, (group + count - 1) // tf.maximum(count, 1), 0)
    pooled = tf.tile(pooled, [tf.maximum(copies, 1)])[:tf.maximum(count, group * tf.sign(count))]
    groups = tf.size(pooled, out_type=tf.int64) // group
    return values, tf.reshape(pooled[:groups * group], [-1, group])


def _pool_batches(values: tf.Tensor, groups: tf.Tensor) -> tf.data.Dataset:
    """A pool's (values, groups) -> (values, group) for each of its groups."""
    return tf.data.Dataset.zip((tf.data.Dataset.from_tensors(values).repeat(),
                                tf.data.Dataset.from_tensor_slices(groups)))


def process_files(files: Sequence[str], *, num_workers: int, worker_index: int) -> List[str]:
    """The files training process `worker_index` of `num_workers` reads: one in `num_workers`
    when there are at least as many files as processes, else all of them."""
    files = list(files)
    return files[worker_index::num_workers] if 1 < num_workers <= len(files) else files


def make_series_input_fn(*, files: Sequence[str], split: str, training: bool, batch_size: int,
                         n_inputs: int, n_outputs: int, seed: int = 0, num_workers: int = 1,
                         worker_index: int = 0, steps_per_run: int = 1,
                         covariates: Sequence[Covariate] = (),
                         scales: Optional[SeriesScales] = None, stride: int = 1
                         ) -> Callable[[], tf.data.Dataset]:
    """An Estimator input_fn of the windows of `split`, cut from the series shards `files`.

    Elements are (features, labels) as the row pipeline's (`trainer.data.pipeline`):
    features {"rawdata": [batch, n_inputs]} (and the covariates' features, `window_features`),
    labels [batch, n_outputs]; in training with `steps_per_run` > 1, [steps_per_run, batch, ...].
    In evaluation with `scales`, the features also hold each window's series and its scales
    (`series_features`), which the metrics score per series; with `stride` > 1, every
    `stride`-th window from the split's end (`window_starts`).
    """
    files = list(files)
    shard_files = training and 1 < num_workers <= len(files)
    if shard_files:
        files = process_files(files, num_workers=num_workers, worker_index=worker_index)
    width = n_inputs + n_outputs
    cut = functools.partial(_file_windows, n_inputs=n_inputs, n_outputs=n_outputs, split=split,
                            covariate_count=len(covariates))
    channels = [1 + len(covariates)] if covariates else []

    def to_example(windows: tf.Tensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
        return window_features(windows, n_inputs=n_inputs, covariates=covariates)

    def input_fn() -> tf.data.Dataset:
        if not training:
            def file_batches(target: tf.Tensor, starts: tf.Tensor, series: tf.Tensor
                             ) -> tf.data.Dataset:
                return tf.data.Dataset.zip((
                    tf.data.Dataset.from_tensors(target).repeat(),
                    tf.data.Dataset.from_tensor_slices((starts, series)).batch(batch_size)))

            def to_evaluation(target: tf.Tensor, batch: Tuple[tf.Tensor, tf.Tensor]):
                starts, series = batch
                features, labels = to_example(gather_windows(target, starts, width=width))
                if scales is not None:
                    features = series_features(features, series, scales)
                return features, labels

            with_series = functools.partial(_file_windows_with_series, n_inputs=n_inputs,
                                            n_outputs=n_outputs, split=split,
                                            covariate_count=len(covariates), stride=stride)
            dataset = tf.data.Dataset.from_tensor_slices(files).map(with_series)
            return dataset.flat_map(file_batches).map(to_evaluation).prefetch(tf.data.AUTOTUNE)

        if shard_files:
            logger.info("training process %d of %d reads %d of the series files", worker_index,
                        num_workers, len(files))
        elif num_workers > 1:
            logger.warning("only %d series files for %d training processes: each reads all of "
                           "them, in its own shuffled order; prepare with --shards %d or more to "
                           "split them", len(files), num_workers, num_workers)
        worker_seed = seed + worker_index
        group = batch_size * steps_per_run
        # Each file is read and decoded once per run: its series and window starts are kept in
        # memory (a few bytes per point), and every pass reshuffles the files and the starts.
        dataset = tf.data.Dataset.from_tensor_slices(files)
        dataset = dataset.map(cut, num_parallel_calls=min(len(files), MAX_PARALLEL_DECODES))
        dataset = dataset.cache().shuffle(len(files), seed=worker_seed).repeat()
        dataset = dataset.ragged_batch(min(len(files), POOL_FILES))
        # The next pool is made (joined, padded, shuffled) while this one's batches are cut.
        dataset = dataset.map(functools.partial(_pool_groups, group=group, seed=worker_seed))
        dataset = dataset.prefetch(1).flat_map(_pool_batches)
        shape = [steps_per_run, batch_size] if steps_per_run > 1 else [batch_size]

        slicer = make_window_slicer(n_inputs=n_inputs, n_outputs=n_outputs)

        def to_batch(values: tf.Tensor, starts: tf.Tensor):
            # The slicer's outputs have static shapes: [*shape, n_inputs or n_outputs, *channels].
            inputs, targets = slicer(tf.ensure_shape(values, [None, *channels]),
                                     tf.reshape(starts, shape))
            if not covariates:
                return build_features(inputs), targets
            return to_example(tf.concat([inputs, targets], axis=-2))

        dataset = dataset.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        return dataset.prefetch(tf.data.AUTOTUNE)

    return input_fn


def read_split_windows(files: Sequence[str], *, split: str, n_inputs: int, n_outputs: int,
                       covariate_count: int = 0) -> np.ndarray:
    """Every window of `split` in `files`, in order, as NumPy [windows, n_inputs + n_outputs]
    (with covariates [windows, width, 1 + covariates], the target first)."""
    return read_windows_and_series(files, split=split, n_inputs=n_inputs, n_outputs=n_outputs,
                                   covariate_count=covariate_count)[0]


def read_windows_and_series(files: Sequence[str], *, split: str, n_inputs: int, n_outputs: int,
                            covariate_count: int = 0, scale_sums: Optional[ScaleSums] = None,
                            stride: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Every window of `split` in `files`, in order, as NumPy [windows, n_inputs + n_outputs]
    (with covariates [windows, width, 1 + covariates], the target first), and the series of
    each [windows]. Each file's points are added to `scale_sums` when given."""
    width = n_inputs + n_outputs
    parts, series = [], []
    for path in files:
        arrays = read_series_file(path, covariate_count=covariate_count)
        if scale_sums is not None:
            scale_sums.add(arrays)
        columns = {name: tf.constant(value) for name, value in arrays.items()}
        starts = window_starts(columns, n_inputs=n_inputs, n_outputs=n_outputs, split=split,
                               stride=stride)
        parts.append(gather_windows(point_values(columns), starts, width=width).numpy())
        series.append(arrays["series"][starts.numpy()])
    shape = (0, width, 1 + covariate_count) if covariate_count else (0, width)
    if not parts:
        return np.zeros(shape), np.zeros(0, np.int64)
    return np.concatenate(parts).astype(np.float64), np.concatenate(series).astype(np.int64)


def read_split_examples(files: Sequence[str], *, split: str, n_inputs: int, n_outputs: int,
                        covariates: Sequence[Covariate] = ()
                        ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
    """Every window of `split` as (features, labels) in NumPy, with the keys the model's serving
    signature takes."""
    return read_examples_and_series(files, split=split, n_inputs=n_inputs, n_outputs=n_outputs,
                                    covariates=covariates)[:2]


def read_examples_and_series(files: Sequence[str], *, split: str, n_inputs: int, n_outputs: int,
                             covariates: Sequence[Covariate] = (),
                             scale_sums: Optional[ScaleSums] = None, stride: int = 1
                             ) -> Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """`read_split_examples` and the series of each window (what `trainer.evaluate --data_dir`
    scores); each file's points are added to `scale_sums` when given."""
    windows, series = read_windows_and_series(files, split=split, n_inputs=n_inputs,
                                              n_outputs=n_outputs, covariate_count=len(covariates),
                                              scale_sums=scale_sums, stride=stride)
    features, labels = window_features(tf.constant(windows), n_inputs=n_inputs,
                                       covariates=covariates)
    return ({key: value.numpy() for key, value in features.items()},
            labels.numpy().astype(np.float64), series)


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
