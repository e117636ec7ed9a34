"""Ensemble selection: greedy forward selection with replacement on validation forecasts
(Caruana, Niculescu-Mizil, Crew and Ksikes, "Ensemble selection from libraries of models",
ICML 2004; AutoGluon's `EnsembleSelection` does the same).

Each round adds to the bag the member whose addition gives the bag's mean forecast the lowest
validation score; a member may be added again, so the weights are the members' shares of the
bag. The bag starts empty, so round 1 picks the best single member; the answer is the bag of
the round with the lowest score (the first such round), so that more rounds never make the
validation score worse than the best single member's.

The score is MASE as the package scores it (`trainer.model.metrics`): each series' mean
absolute error over its windows and steps, divided by its in-sample seasonal-naive scale, then
averaged over the series that have a scale. `mean_scaled_error` computes it in NumPy, because
the selection scores thousands of bags, and a test checks it against `compute_metrics`.

>>> import numpy as np
>>> targets = np.array([[1.0], [1.0]])  # 2 windows, 1 step, one series of scale 1
>>> forecasts = np.array([[[0.0], [0.0]], [[2.0], [2.0]], [[3.0], [3.0]]])  # 3 members
>>> selection = greedy_selection(forecasts, targets=targets, series=np.array([0, 0]),
...                              scales=np.array([1.0]), rounds=4)
>>> selection.weights.tolist(), round(selection.score, 3)
([0.5, 0.5, 0.0], 0.0)
"""

import dataclasses
from typing import List, Sequence

import numpy as np


def mean_scaled_error(forecast: np.ndarray, *, targets: np.ndarray, series: np.ndarray,
                      scales: np.ndarray) -> float:
    """MASE of `forecast` [windows, steps] against `targets`: per series (`series` [windows],
    0 .. len(scales) - 1), each series' MAE over its windows divided by its scale, averaged
    over the series that have windows and a positive, finite scale (NaN when none has)."""
    errors = np.abs(np.asarray(forecast, np.float64) - targets).sum(axis=1)
    return _per_series_mean(errors, series=series, scales=scales, steps=targets.shape[1])


def _per_series_mean(window_errors: np.ndarray, *, series: np.ndarray, scales: np.ndarray,
                     steps: int) -> float:
    count = len(scales)
    sums = np.bincount(series, weights=window_errors, minlength=count)
    points = np.bincount(series, minlength=count) * steps
    usable = (points > 0) & np.isfinite(scales) & (scales > 0)
    if not usable.any():
        return float("nan")
    return float(np.mean(sums[usable] / points[usable] / scales[usable]))


@dataclasses.dataclass(frozen=True)
class Selection:
    """The chosen bag: a weight per member (shares of the bag, summing to 1), its validation
    score, and each round's score (the history a leaderboard can show)."""

    weights: np.ndarray  # [members]
    score: float
    round_scores: List[float]
    rounds_used: int  # the round whose bag was kept


def greedy_selection(forecasts: np.ndarray, *, targets: np.ndarray, series: np.ndarray,
                     scales: np.ndarray, rounds: int = 25,
                     required: Sequence[int] = ()) -> Selection:
    """Select an ensemble of the members' validation `forecasts` [members, windows, steps].

    Args:
      targets: [windows, steps], the values the forecasts are scored against.
      series: [windows], each window's series (0 .. len(scales) - 1).
      scales: [series], each series' in-sample scale (MASE's); a series without a positive,
        finite scale is left out of the score.
      rounds: how many members the bag may hold (with repeats).
      required: members of which the bag must hold at least one (e.g. the trained ones, when
        the export needs one); when round 1 would pick none of them, it picks the best of them.
    Ties go to the member listed first, so list the cheaper ones first.
    """
    forecasts = np.asarray(forecasts, np.float64)
    targets = np.asarray(targets, np.float64)
    if forecasts.ndim != 3 or forecasts.shape[1:] != targets.shape:
        raise ValueError(f"forecasts have shape {forecasts.shape}, expected [members, "
                         f"{', '.join(map(str, targets.shape))}] to match the targets")
    if len(forecasts) == 0:
        raise ValueError("no member to select from")
    if rounds < 1:
        raise ValueError(f"rounds {rounds} must be at least 1")
    series = np.asarray(series, np.int64)
    scales = np.asarray(scales, np.float64)
    counts = np.zeros(len(forecasts), np.int64)
    bag_sum = np.zeros_like(targets)
    scores: List[float] = []
    best_counts, best_score = counts.copy(), float("inf")
    for size in range(1, rounds + 1):
        candidates = [mean_scaled_error((bag_sum + member) / size, targets=targets,
                                        series=series, scales=scales) for member in forecasts]
        if size == 1 and required:  # start from the best of the required members
            allowed = np.full(len(candidates), np.inf)
            allowed[list(required)] = np.asarray(candidates)[list(required)]
            candidates = list(np.where(np.isnan(allowed), np.inf, allowed))
        pick = int(np.nanargmin(candidates)) if not np.all(np.isnan(candidates)) else 0
        counts[pick] += 1
        bag_sum += forecasts[pick]
        scores.append(float(candidates[pick]))
        if scores[-1] < best_score:
            best_counts, best_score = counts.copy(), scores[-1]
    if not np.isfinite(best_score):
        raise ValueError("no series has windows and an in-sample scale: nothing to select on")
    return Selection(weights=best_counts / best_counts.sum(), score=best_score,
                     round_scores=scores, rounds_used=int(best_counts.sum()))


def combine(forecasts: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The weighted combination sum_i w_i forecasts[i] of [members, ...] forecasts."""
    weights = np.asarray(weights, np.float64)
    return np.tensordot(weights, np.asarray(forecasts, np.float64), axes=1)
