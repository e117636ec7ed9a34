"""Ensemble selection on validation forecasts: the score is the package's MASE, the greedy
selection with replacement (Caruana et al. 2004) never scores worse than the best member."""

import numpy as np
import pytest

from trainer.model.metrics import SeriesInfo, compute_metrics
from trainer.search.selection import combine, greedy_selection, mean_scaled_error

WINDOWS, STEPS, N_INPUTS = 30, 4, 7  # different sizes per dimension


def three_series(seed=0):
    """30 windows of 3 series on scales 10, 1000 and 100000 (the second has 12 windows)."""
    rng = np.random.default_rng(seed)
    series = np.repeat([0, 1, 2], [9, 12, 9])
    level = np.array([10.0, 1000.0, 100000.0])[series]
    targets = level[:, None] * (1 + 0.1 * rng.standard_normal((WINDOWS, STEPS)))
    inputs = level[:, None] * (1 + 0.1 * rng.standard_normal((WINDOWS, N_INPUTS)))
    scales = np.array([1.0, 80.0, 9000.0])
    return targets, inputs, series, scales


def test_the_score_is_the_packages_mase_per_series():
    targets, inputs, series, scales = three_series()
    forecast = targets + np.random.default_rng(1).normal(0, 1, targets.shape) * scales[series, None]
    info = SeriesInfo(index=series, mase_scale=scales[series], rmsse_scale=scales[series] ** 2,
                      count=3)
    expected = compute_metrics(actual=targets, forecast=forecast, inputs=inputs, season=1,
                               mase_scale=None, series=info)["mase"]
    assert mean_scaled_error(forecast, targets=targets, series=series,
                             scales=scales) == pytest.approx(expected, rel=1e-9)
    # By hand: each series' MAE over its own scale, then the mean of the three.
    by_hand = np.mean([np.abs(forecast - targets)[series == s].mean() / scales[s] for s in range(3)])
    assert mean_scaled_error(forecast, targets=targets, series=series,
                             scales=scales) == pytest.approx(by_hand, rel=1e-12)


def test_a_series_without_a_scale_is_left_out():
    targets, _, series, scales = three_series()
    forecast = targets + 1.0
    scales = scales.copy()
    scales[2] = 0.0
    by_hand = np.mean([1.0 / scales[0], 1.0 / scales[1]])
    assert mean_scaled_error(forecast, targets=targets, series=series,
                             scales=scales) == pytest.approx(by_hand)


def test_two_opposite_biases_combine_into_a_better_forecast_than_either():
    targets, _, series, scales = three_series()
    noise = np.random.default_rng(2).normal(0, 0.2, targets.shape) * scales[series, None]
    high = targets + 3 * scales[series, None] + noise  # biased up
    low = targets - 3 * scales[series, None] + noise  # biased down as much
    worse = targets + 5 * scales[series, None]
    forecasts = np.stack([worse, high, low])
    selection = greedy_selection(forecasts, targets=targets, series=series, scales=scales,
                                 rounds=10)
    singles = [mean_scaled_error(f, targets=targets, series=series, scales=scales)
               for f in forecasts]
    assert selection.round_scores[0] == pytest.approx(min(singles))  # round 1: the best single
    assert selection.weights.tolist() == pytest.approx([0.0, 0.5, 0.5])
    assert selection.score == pytest.approx(mean_scaled_error(
        combine(forecasts, selection.weights), targets=targets, series=series, scales=scales))
    assert selection.score < 0.5 * min(singles)


def test_with_replacement_a_member_can_weigh_more_than_another():
    """Targets at 1; members at 0 and 3: the mean of (0, 0, 3) hits 1 exactly."""
    targets = np.ones((5, 2))
    forecasts = np.stack([np.zeros((5, 2)), np.full((5, 2), 3.0)])
    selection = greedy_selection(forecasts, targets=targets, series=np.zeros(5, np.int64),
                                 scales=np.array([1.0]), rounds=6)
    assert selection.weights.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert selection.score == pytest.approx(0.0) and selection.rounds_used == 3
    assert len(selection.round_scores) == 6
    assert min(selection.round_scores) == selection.score


def test_more_rounds_never_score_worse_than_the_best_member():
    targets, _, series, scales = three_series(seed=3)
    rng = np.random.default_rng(4)
    forecasts = targets[None] + rng.normal(0, 1, (6, WINDOWS, STEPS)) * scales[series, None]
    best = min(mean_scaled_error(f, targets=targets, series=series, scales=scales)
               for f in forecasts)
    for rounds in (1, 3, 20):
        selection = greedy_selection(forecasts, targets=targets, series=series, scales=scales,
                                     rounds=rounds)
        assert selection.score <= best + 1e-12
        assert selection.weights.sum() == pytest.approx(1.0) and (selection.weights >= 0).all()


def test_bad_input_is_named():
    targets = np.ones((5, 2))
    with pytest.raises(ValueError, match=r"shape \(2, 5, 3\), expected \[members, 5, 2\]"):
        greedy_selection(np.ones((2, 5, 3)), targets=targets, series=np.zeros(5, np.int64),
                         scales=np.array([1.0]))
    with pytest.raises(ValueError, match="no series has windows and an in-sample scale"):
        greedy_selection(np.ones((2, 5, 2)), targets=targets, series=np.zeros(5, np.int64),
                         scales=np.array([0.0]))


def test_a_required_member_is_in_the_bag_even_when_another_is_better():
    """Member 0 is perfect; the bag must hold member 1 or 2: it starts from the better, 1."""
    targets = np.ones((4, 3))
    forecasts = np.stack([np.ones((4, 3)), np.full((4, 3), 2.0), np.full((4, 3), 4.0)])
    selection = greedy_selection(forecasts, targets=targets, series=np.zeros(4, np.int64),
                                 scales=np.array([1.0]), rounds=8, required=[1, 2])
    assert selection.round_scores[0] == pytest.approx(1.0)  # member 1 alone
    assert selection.weights[1] > 0 and selection.weights[0] > 0 and selection.weights[2] == 0
    assert selection.score < 1.0
