"""Every window of a split of series shards, read into NumPy in order: what `trainer.evaluate
--data_dir` scores, with the series of each window (and, when asked, every `stride`-th window
only: backtest windows), decoded and cut as the tf.data pipeline cuts them
(`trainer.data.series_decode`).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from trainer.data.covariates import Covariate
from trainer.data.prepared import PreparedSeries
from trainer.data.series_decode import (
    gather_windows,
    point_values,
    read_series_file,
    window_features,
    window_starts,
)
from trainer.data.series_scales import ScaleSums, SeriesScales, stored_scales
from trainer.data.windows import evaluation_stride
from trainer.util.lazy import tf


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


@dataclasses.dataclass(frozen=True)
class ScoredSplit:
    """The windows of a split as they are scored: the features (the serving signature's keys)
    and labels of each window, its series, and each series' in-sample scales."""

    features: Dict[str, np.ndarray]
    labels: np.ndarray  # [windows, n_outputs], float64
    series: np.ndarray  # [windows], int64
    scales: SeriesScales


def read_scored_split(prepared: PreparedSeries, *, split: str, n_inputs: int, n_outputs: int,
                      season: int) -> ScoredSplit:
    """The windows of `split` that `trainer.evaluate` and the model search score: one per
    horizon when the split was cut into backtest windows (else every window), with each
    series' scales for `season` from prepare.json (computed from the shards when it holds
    none for that season)."""
    series_ids = prepared.summary.get("series_ids")
    sums = ScaleSums(series_count=len(series_ids or ()), season=season)
    stride = evaluation_stride(prepared.summary.get("boundaries", {}), split, n_outputs=n_outputs)
    features, labels, window_series = read_examples_and_series(
        prepared.files, split=split, n_inputs=n_inputs, n_outputs=n_outputs,
        covariates=prepared.covariates, scale_sums=sums, stride=stride)
    scales = (stored_scales(prepared.summary, season=season, split=split,
                            series_count=sums.series_count) or sums.scales(split))
    return ScoredSplit(features=features, labels=labels, series=window_series, scales=scales)


def split_histories(prepared: PreparedSeries, *, split: str, n_outputs: int) -> np.ndarray:
    """The longest look-back of each series that has a window of `split` (its windows cut as
    `read_scored_split` cuts them): the points before the targets of its last window, in their
    segment. One value per such series, in the order of the shards.

    A series holds a window of `split` at look-back L when its value here is at least L."""
    stride = evaluation_stride(prepared.summary.get("boundaries", {}), split, n_outputs=n_outputs)
    histories = []
    for path in prepared.files:
        arrays = read_series_file(path, covariate_count=len(prepared.covariates), with_time=False)
        columns = {name: tf.constant(arrays[name]) for name in ("series", "segment", "split")}
        starts = window_starts(columns, n_inputs=1, n_outputs=n_outputs, split=split,
                               stride=stride).numpy()
        if not len(starts):
            continue
        # The first row of each row's run of one series and segment.
        keys = np.stack([arrays["series"], arrays["segment"]], axis=1)
        new_run = np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)]
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(keys)), 0))
        targets = starts + 1
        history = targets - run_start[targets]
        series = arrays["series"][targets]
        for index in np.unique(series):
            histories.append(int(history[series == index].max()))
    return np.asarray(histories, np.int64)
