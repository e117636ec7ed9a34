"""Windows cut from series shards inside tf.data: the input of a `--data_dir` of the series layout.

Each file is decoded into columns once and the window starts of a split are found for the whole
file at once (`trainer.data.series_decode`); a batch of windows is one gather: in training an
XLA gather of whole slices (`make_window_slicer`), in evaluation [batch, n_inputs + n_outputs]
values by index (`gather_windows`). No Python runs per window or per row, and no window is
stored: `--n_inputs` and `--n_outputs` are free at training time.

- Training (`make_series_input_fn(training=True)`) takes the files of this process (one file
  in `num_workers` when there are enough: `trainer.data.pipeline.process_files`, the row
  pipeline's rule too), decodes each once and keeps it in memory for the run, takes them in a
  new order each pass, pools up to `POOL_FILES` of them, shuffles the starts of the pool
  together (across series and files) and cuts them into whole batches of
  `batch_size * steps_per_run`; the starts left over that fill no whole batch are left out of
  that pass only, a different few each pass (a pool smaller than one batch is repeated to fill
  one).
- Evaluation makes one ordered pass over every window of the split, stride 1, none dropped.
"""

from __future__ import annotations

import functools
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from tensorflow.compiler.tf2xla.python import xla as tf_xla

from trainer.data.covariates import Covariate
from trainer.data.pipeline import log_process_files, process_files
from trainer.data.schema import MASE_SCALE_KEY, RMSSE_SCALE_KEY, SERIES_INDEX_KEY, build_features
from trainer.data.series_decode import (
    gather_windows,
    load_series_file,
    point_values,
    window_features,
    window_starts,
)
from trainer.data.series_scales import SeriesScales
from trainer.util.lazy import tf

POOL_FILES = 8  # files whose windows are shuffled together in training
# Files decoded at once in training: one decode of a large file already takes a core, and more
# at once only hold more decoded copies in memory before the first batch.
MAX_PARALLEL_DECODES = 2


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
    all_files = list(files)
    files = (process_files(all_files, num_workers=num_workers, worker_index=worker_index)
             if training else all_files)
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

        log_process_files(all_files, kind="series", num_workers=num_workers,
                          worker_index=worker_index)
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
