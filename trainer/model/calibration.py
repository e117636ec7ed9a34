"""Split-conformal calibration of the forecast's quantiles, computed once and applied in the graph.

A model's 80% interval should hold 80% of the values it has not seen. A quantile head trained
on the train split often holds less on the valid split (72-78% in this package's runs), and a
point head (`mse`, `mae`) has no interval at all. Calibration moves each quantile by an offset
learnt from the residuals of held-out windows (split conformal prediction, per horizon step
and per level), in units of each window's own scale, so that the SavedModel applies it with
nothing but `rawdata` as input:

- **the scale** s of a window is the mean |x[t] - x[t-1]| over its `n_inputs` raw inputs: the
  per-window counterpart of MASE's per-series naive scale (`window_scales`). A flat window
  (s = 0) takes instead `Calibration.fallback_scale`, the median of the calibration windows'
  scales (1 when that is 0 too), baked into the graph;
- **the offsets**, for each step h, from the n calibration windows' residuals
  r = (y - q_tau) / s (the quantile head's q_tau, or a point head's forecast at every level):
  the two ends of each central interval [q_tau, q_(1-tau)] move apart by the same c[h], the
  ceil((n + 1)(1 - 2 tau))-th smallest of the scores max(-r_tau, r_(1-tau)), so that the
  interval holds its nominal share of the held-out values (conformalized quantile regression;
  for a point head the plain split-conformal |y - forecast| / s). A level without its partner
  moves by the tau-quantile of its own r with the same finite-sample correction (the
  ceil((n + 1) tau)-th smallest above 0.5, the floor((n + 1) tau)-th below; `conformal_rank`).
  The 0.5 level keeps offset 0, and `predicted` never changes (`conformal_offsets`);
- **the calibrated quantile** is q_tau + c_tau[h] s, then made non-crossing from the anchor
  (the 0.5 level, else the level nearest it) outward: each level above is the running max of
  the levels from the anchor up to it, each below the running min, so the anchor never moves
  and no two quantiles cross (`non_crossing`).

For a point head the quantiles start at its forecast at every level (`--quantiles`), so the
export gains the quantile head's outputs, `quantiles` [batch, n_outputs, Q] and
`quantile_levels` [batch, Q], and head.json names the levels and the calibration
(`calibrated_head_description`): `trainer.evaluate` and `trainer.predict` read them as they
read a quantile head's. `fit_calibration` computes a `Calibration` from predictions; the
`ModelSpec` carries it and `model_fn` applies it after unscaling, in every mode
(`calibrate_predictions`), so that serving and the evaluation metrics see the same quantiles.

>>> calibration = Calibration(levels=(0.1, 0.5, 0.9), offsets=((-1.0, 0.0, 2.0),),
...                           fallback_scale=1.0, windows=20)
>>> predictions = {"predicted": tf.constant([[10.0]])}  # a point head: [batch 1, n_outputs 1]
>>> rawdata = tf.constant([[1.0, 2.0, 4.0]])  # scale: mean(|2 - 1|, |4 - 2|) = 1.5
>>> calibrate_predictions(predictions, rawdata=rawdata, calibration=calibration)[
...     "quantiles"].numpy().tolist()
[[[8.5, 10.0, 13.0]]]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from trainer.model.heads import (
    PREDICTIONS_KEY,
    QUANTILE_LEVELS_KEY,
    QUANTILES_KEY,
    Head,
    check_quantiles,
)
from trainer.model.metrics import central_intervals, interval_terms
from trainer.util.lazy import tf

# Fewer held-out windows than this per step: the offsets of the outer levels would rest on one
# or two residuals (the 0.1 level of 9 windows is the smallest residual), so none are computed.
CALIBRATION_MIN_WINDOWS = 20
CALIBRATION_METHOD = ("split conformal, per horizon step and level, on residuals scaled by each "
                      "window's mean |x[t] - x[t-1]| over its inputs")
# (n + 1) tau lands on an integer for round levels, where float rounding must not move the rank.
_RANK_TOLERANCE = 1e-9
# Levels tau and 1 - tau closer than this to summing to 1 make a central interval.
_PAIR_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The offsets that calibrate a model's quantiles, in units of each window's scale.

    >>> Calibration(levels=(0.1, 0.5, 0.9), offsets=((-1.2, 0.0, 1.3), (-1.5, 0.0, 1.6)),
    ...             fallback_scale=0.4, windows=250).n_outputs
    2
    """

    levels: Tuple[float, ...]  # increasing, in (0, 1)
    offsets: Tuple[Tuple[float, ...], ...]  # [n_outputs][Q]: c_tau[h], per window scale
    fallback_scale: float  # the scale of a flat window (> 0)
    windows: int  # held-out windows the offsets were computed from, per step

    def __post_init__(self) -> None:
        check_quantiles(self.levels)
        if not self.offsets or any(len(row) != len(self.levels) for row in self.offsets):
            raise ValueError(f"calibration offsets must be [n_outputs][{len(self.levels)}] (one per "
                             f"level {list(self.levels)} at each step), got "
                             f"{[len(row) for row in self.offsets]} values per step")
        if not all(math.isfinite(value) for row in self.offsets for value in row):
            raise ValueError("calibration offsets must be finite numbers")
        for index, level in enumerate(self.levels):
            if level == 0.5 and any(row[index] != 0.0 for row in self.offsets):
                raise ValueError("the 0.5 level of a calibration keeps its quantile: its offsets "
                                 "must be 0")
        if not (math.isfinite(self.fallback_scale) and self.fallback_scale > 0):
            raise ValueError(f"calibration fallback_scale {self.fallback_scale} must be > 0")
        if self.windows < 1:
            raise ValueError(f"calibration windows {self.windows} must be >= 1")

    @property
    def n_outputs(self) -> int:
        return len(self.offsets)

    def to_json(self) -> Dict[str, Any]:
        """The fields as JSON values (calibration.json and head.json hold them)."""
        return {"levels": list(self.levels), "offsets": [list(row) for row in self.offsets],
                "fallback_scale": self.fallback_scale, "windows": self.windows,
                "method": CALIBRATION_METHOD}

    @classmethod
    def from_json(cls, data: Dict[str, Any], *, source: str) -> Calibration:
        """The calibration in `data` (`to_json`'s keys; others are ignored); a ValueError names
        `source` and what is wrong."""
        try:
            return cls(levels=tuple(float(level) for level in data["levels"]),
                       offsets=tuple(tuple(float(value) for value in row)
                                     for row in data["offsets"]),
                       fallback_scale=float(data["fallback_scale"]), windows=int(data["windows"]))
        except (KeyError, TypeError, ValueError) as error:
            detail = f"no {error}" if isinstance(error, KeyError) else str(error)
            raise ValueError(f"{source} is not a calibration ({detail}); expected the "
                             "calibration.json of a training run with --calibrate_intervals") from None


def mean_absolute_change(rawdata: tf.Tensor) -> tf.Tensor:
    """Each window's mean |x[t] - x[t-1]| over its inputs: [batch, n_inputs] -> [batch] (0 for a
    window of one input, which has no change).

    >>> mean_absolute_change(tf.constant([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])).numpy().tolist()
    [1.5, 0.0]
    """
    rawdata = tf.cast(rawdata, tf.float32)
    if rawdata.shape[1] is not None and rawdata.shape[1] < 2:
        return tf.zeros_like(rawdata[:, 0])
    return tf.reduce_mean(tf.abs(rawdata[:, 1:] - rawdata[:, :-1]), axis=1)


def window_scales(rawdata: tf.Tensor, *, fallback_scale: float) -> tf.Tensor:
    """The scale of each window [batch]: `mean_absolute_change`, or `fallback_scale` where the
    window is flat.

    >>> window_scales(tf.constant([[1.0, 3.0], [5.0, 5.0]]), fallback_scale=0.5).numpy().tolist()
    [2.0, 0.5]
    """
    change = mean_absolute_change(rawdata)
    return tf.where(change > 0, change, tf.fill(tf.shape(change), tf.constant(
        fallback_scale, change.dtype)))


def fallback_scale(changes: np.ndarray) -> float:
    """The scale of a flat window: the median of the calibration windows' `mean_absolute_change`,
    1 when that is 0 too (most windows flat).

    >>> fallback_scale(np.array([0.0, 2.0, 4.0])), fallback_scale(np.array([0.0, 0.0, 3.0]))
    (2.0, 1.0)
    """
    median = float(np.median(changes)) if len(changes) else 0.0
    return median if median > 0 else 1.0


def conformal_rank(windows: int, level: float) -> int:
    """The 1-based rank of the residual that is the `level` offset among `windows` sorted
    residuals: ceil((n + 1) tau) above 0.5, floor((n + 1) tau) below, clipped to 1..n.

    >>> conformal_rank(19, 0.9), conformal_rank(19, 0.1), conformal_rank(99, 0.9)
    (18, 2, 90)
    >>> conformal_rank(5, 0.95), conformal_rank(5, 0.05)
    (5, 1)
    """
    position = (windows + 1) * level
    rank = (math.ceil(position - _RANK_TOLERANCE) if level > 0.5
            else math.floor(position + _RANK_TOLERANCE))
    return min(max(rank, 1), windows)


def interval_rank(windows: int, coverage: float) -> int:
    """The 1-based rank of the offset of a central interval of `coverage` among `windows`
    sorted scores: ceil((n + 1) coverage), clipped to 1..n.

    >>> interval_rank(19, 0.8), interval_rank(99, 0.8), interval_rank(10, 0.95)
    (16, 80, 10)
    """
    rank = math.ceil((windows + 1) * coverage - _RANK_TOLERANCE)
    return min(max(rank, 1), windows)


def level_pairs(levels: Sequence[float]) -> Tuple[Tuple[int, int], ...]:
    """The (lower, upper) indices of the levels tau < 0.5 and 1 - tau both in `levels`: the
    central intervals.

    >>> level_pairs((0.025, 0.1, 0.5, 0.9, 0.975)), level_pairs((0.1, 0.5, 0.8))
    (((0, 4), (1, 3)), ())
    """
    return tuple((low, high) for low, level in enumerate(levels) if level < 0.5
                 for high, other in enumerate(levels)
                 if abs(level + other - 1.0) < _PAIR_TOLERANCE)


def conformal_offsets(residuals: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """The offsets [n_outputs, Q] of residuals [windows, n_outputs, Q] (the level's residuals
    at each step, r = (y - q_tau) / s); 0 at the 0.5 level.

    - The two levels of a central interval (tau and 1 - tau) move apart by one offset c, the
      `interval_rank`-th smallest of the scores max(-r_tau, r_(1-tau)) (how far each value
      lies outside the interval; conformalized quantile regression): -c and +c. For a point
      head the score is |y - forecast| / s, the plain split-conformal interval.
    - A level without its partner moves on its own by the `conformal_rank`-th smallest of its
      residuals (one-sided).

    Symmetric offsets keep the interval's centre where the model put it: one-sided ones would
    also shift it by the valid split's bias, which need not be the test's (ETTh2: 68% instead
    of 73% held in one run's 80% interval on test).

    Nineteen windows whose values lie k = 1..19 inside both ends: the scores are -19..-1, and the
    16th smallest, -4, narrows the interval by 4 at each end:

    >>> residuals = np.arange(1.0, 20.0)[:, None, None] * np.array([1.0, 1.0, -1.0])
    >>> conformal_offsets(residuals, (0.1, 0.5, 0.9)).tolist()
    [[4.0, 0.0, -4.0]]
    """
    windows = residuals.shape[0]
    offsets = np.zeros(residuals.shape[1:])
    paired = set()
    for low, high in level_pairs(levels):
        scores = np.sort(np.maximum(-residuals[:, :, low], residuals[:, :, high]), axis=0)
        offset = scores[interval_rank(windows, levels[high] - levels[low]) - 1]
        offsets[:, low], offsets[:, high] = -offset, offset
        paired.update((low, high))
    ordered = np.sort(residuals, axis=0)
    for index, level in enumerate(levels):
        if level != 0.5 and index not in paired:
            offsets[:, index] = ordered[conformal_rank(windows, level) - 1, :, index]
    return offsets


def anchor_index(levels: Sequence[float]) -> int:
    """The level non-crossing starts from: 0.5, else the level nearest it (the quantile head's
    anchor too)."""
    return min(range(len(levels)), key=lambda index: abs(levels[index] - 0.5))


def non_crossing(quantiles: tf.Tensor, *, anchor: int) -> tf.Tensor:
    """Quantiles [..., Q] made increasing from the level `anchor` outward: above it the running
    max, below it the running min; the anchor's values stay.

    >>> non_crossing(tf.constant([[3.0, 1.0, 2.0, 1.5, 4.0]]), anchor=2).numpy().tolist()
    [[1.0, 1.0, 2.0, 2.0, 4.0]]
    """
    columns = [quantiles[..., index] for index in range(quantiles.shape[-1])]
    for index in range(anchor + 1, len(columns)):
        columns[index] = tf.maximum(columns[index], columns[index - 1])
    for index in range(anchor - 1, -1, -1):
        columns[index] = tf.minimum(columns[index], columns[index + 1])
    return tf.stack(columns, axis=-1)


def calibrated_quantiles(base: tf.Tensor, *, rawdata: tf.Tensor, calibration: Calibration
                         ) -> tf.Tensor:
    """Quantiles [batch, n_outputs, Q] (a quantile head's, or a point forecast at every level)
    -> base + offsets * each window's scale, non-crossing from the anchor."""
    scale = window_scales(rawdata, fallback_scale=calibration.fallback_scale)
    offsets = tf.constant(calibration.offsets, dtype=base.dtype)  # [n_outputs, Q]
    moved = base + offsets[None, :, :] * tf.cast(scale, base.dtype)[:, None, None]
    return non_crossing(moved, anchor=anchor_index(calibration.levels))


def calibrate_predictions(predictions: Dict[str, tf.Tensor], *, rawdata: tf.Tensor,
                          calibration: Calibration) -> Dict[str, tf.Tensor]:
    """A head's predictions (in the series' units) with calibrated `quantiles` and their
    `quantile_levels`: a quantile head's moved, a point head's made from its `predicted`;
    `predicted` itself unchanged."""
    point = predictions[PREDICTIONS_KEY]
    base = predictions.get(QUANTILES_KEY)
    if base is None:  # a point head: every level starts at its forecast
        base = tf.tile(point[:, :, None], [1, 1, len(calibration.levels)])
    levels = tf.constant([list(calibration.levels)], dtype=point.dtype)
    return {**predictions,
            QUANTILES_KEY: calibrated_quantiles(base, rawdata=rawdata, calibration=calibration),
            QUANTILE_LEVELS_KEY: tf.tile(levels, [tf.shape(point)[0], 1])}


def fit_calibration(*, actual: np.ndarray, inputs: np.ndarray, levels: Sequence[float],
                    point: np.ndarray, quantiles: Optional[np.ndarray] = None) -> Calibration:
    """The calibration of a model from its predictions on held-out windows: `actual` and `point`
    [windows, n_outputs], their `inputs` [windows, n_inputs], and a quantile head's `quantiles`
    [windows, n_outputs, Q] at `levels` (None for a point head: the quantiles start at `point`).
    """
    levels = check_quantiles(levels)
    actual = np.asarray(actual, np.float64)
    base = (np.repeat(np.asarray(point, np.float64)[:, :, None], len(levels), axis=2)
            if quantiles is None else np.asarray(quantiles, np.float64))
    if base.shape != actual.shape + (len(levels),):
        raise ValueError(f"quantiles of shape {base.shape} do not fit actual values of shape "
                         f"{actual.shape} at {len(levels)} levels")
    # The graph's own scale (float32), so that the offsets are in the units it multiplies.
    changes = mean_absolute_change(tf.constant(inputs, tf.float32)).numpy()
    fallback = fallback_scale(changes)
    scales = window_scales(tf.constant(inputs, tf.float32), fallback_scale=fallback).numpy()
    residuals = (actual[:, :, None] - base) / scales.astype(np.float64)[:, None, None]
    offsets = conformal_offsets(residuals, levels)
    return Calibration(levels=levels, offsets=tuple(tuple(float(v) for v in row) for row in offsets),
                       fallback_scale=fallback, windows=int(actual.shape[0]))


def interval_coverage(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]
                      ) -> Dict[str, Dict[str, float]]:
    """The coverage (percent of `actual` inside) and mean width of every central interval
    among `levels`, by its nominal percent, with the metrics' definitions
    (`trainer.model.metrics.interval_terms`): {"coverage": {"80": 79.6}, "width": {"80": 1.02}}.
    """
    terms = interval_terms(tf.constant(actual, tf.float64), tf.constant(quantiles, tf.float64),
                           levels)
    intervals = central_intervals(levels)
    return {"coverage": {i.name: float(tf.reduce_mean(terms[f"inside_{i.name}"]))
                         for i in intervals},
            "width": {i.name: float(tf.reduce_mean(terms[f"width_{i.name}"])) for i in intervals}}


def calibrated_description(description: Dict[str, Any], calibration: Calibration
                           ) -> Dict[str, Any]:
    """What head.json holds for a calibrated export of a forecaster described by `description`
    (a head's, an ensemble's): the description, the calibrated levels as its `quantiles` (a
    point forecast gains them) and the calibration itself."""
    return {**description, "quantiles": list(calibration.levels),
            "calibration": calibration.to_json()}


def calibrated_head_description(head: Head, calibration: Calibration) -> Dict[str, Any]:
    """What head.json holds for a calibrated export of a model with the head `head`
    (`calibrated_description` of its description)."""
    return calibrated_description(head.describe(), calibration)
