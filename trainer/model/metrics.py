"""How good a forecast is, per series and scale-free as the competitions score it, for the
model and two baselines.

One definition serves both the Estimator's evaluation (`metric_ops`, streaming over batches)
and `python -m trainer.evaluate` (`compute_metrics`, on arrays): both add the same per-window
sums into one accumulator per series (`_window_sums`, in float64), and compute every metric
from those sums (`_from_sums`), nothing dropped.

Pooled over every window and step, in the series' units:

- `rmse` = sqrt(mean((f - a)^2)); `mae` = mean(|f - a|);
- `mape` = 100 * mean(|f - a| / |a|), in percent; infinite when an actual value is 0 and its
  forecast is not (a point where both are 0 counts 0).

Per series, then averaged over the series (each series counts once, whatever its level):

- `smape` = the mean over series of 100 * mean(2 |f - a| / (|a| + |f|)) over the series'
  points, in percent, between 0 and 200 (0 where both are 0): M4's sMAPE;
- `mase` = the mean over series of MAE_s / scale_s, where scale_s is the series' in-sample MAE
  of the seasonal naive forecast, mean |y[t] - y[t - season]| over its history
  (`trainer.data.series_scales`): M4's and the tourism competition's MASE. Below 1: better
  than the seasonal naive forecast one season back, in sample;
- `rmsse` = the mean over series of sqrt(MSE_s / scale2_s), where scale2_s is the series'
  in-sample MSE of the naive forecast, mean (y[t] - y[t-1])^2: M5's RMSSE (unweighted);
- `msis` (with the levels 0.025 and 0.975; M4's definition, alpha = 0.05) = the mean over
  series of mean((U - L) + 2/alpha (L - a) [a < L] + 2/alpha (a - U) [a > U]) / scale_s.

A series whose scale is 0 (a constant history) or unknown (too short) is left out of mase,
rmsse and msis and counted (`series_unscaled`). With series (a prepared directory of the
series layout) an evaluation also reports `series_evaluated` and the share of them on which
the model's MAE is below each baseline's (`share_beating_naive`,
`share_beating_seasonal_naive`, 0 to 1). Without series (rows of the windows layout), all
windows are one series: the same formulas, with one pooled scale, the training split's
in-sample MAE (and MSE) from prepare.json's statistics, else the same means within the
evaluated windows' inputs.

Baselines, on the same windows: `naive` repeats the last input value; `seasonal_naive` repeats
the last `season` input values. Their metrics are prefixed: `naive_rmse`, `seasonal_naive_mase`...

Interval metrics, for a forecast of quantiles q_tau (levels tau, e.g. 0.1, 0.5, 0.9), pooled:

- `wql_<tau>` = 2 * sum(pinball_tau(a, q_tau)) / sum(|a|), the weighted quantile loss of
  DeepAR and GluonTS, where pinball_tau(a, q) = max(tau (a - q), (tau - 1)(a - q)); `wql` is its
  mean over the levels. At tau 0.5 it is sum|a - f| / sum|a|. Undefined (NaN) when every
  actual value is 0.
- For each central interval [q_tau, q_(1-tau)] among the levels, named by its nominal percent
  p = 100 (1 - 2 tau): `coverage_<p>` = the share of actual values inside it (in percent, to
  compare with p) and `width_<p>` = mean(q_(1-tau) - q_tau), in the series' units.

The baselines get intervals too: the empirical quantiles (numpy's "linear" method) of each
window's own in-sample errors, x[t] - x[t-1] for `naive` and x[t] - x[t-season] for
`seasonal_naive`, added to the point forecast and widened like a random walk's, by sqrt(h) at
step h (sqrt(k) for the seasonal one, k = the number of seasons ahead), as in Hyndman and
Athanasopoulos, Forecasting: Principles and Practice, 5.5.

>>> compute_metrics(actual=[[2., 4.]], forecast=[[1., 4.]], inputs=[[1., 3.]], season=1,
...                 mase_scale=2.0)["mae"]
0.5
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from trainer.model.networks import NETWORKS
from trainer.model.optimizers import SEARCH_OPTIMIZER
from trainer.util.lazy import tf

METRICS = ("rmse", "mae", "mape", "smape", "mase", "rmsse")
# Averaged over series: scale-free, so that every series counts once.
SCALE_FREE_METRICS = ("smape", "mase", "rmsse")
# With series only: how many were scored, and on what share the model beats each baseline.
SERIES_METRICS = ("series_evaluated", "series_unscaled", "share_beating_naive",
                  "share_beating_seasonal_naive")
BASELINES = ("naive", "seasonal_naive")
# The metrics a tuning job may minimise (`--hypertune_metric`); lower is better for each.
TUNABLE_METRICS = METRICS + ("wql", "msis")
MSIS_LEVELS = (0.025, 0.975)  # the M4 competition's 95% interval
MSIS_ALPHA = 0.05
# Fewer in-sample errors than this in a window: no baseline interval from them.
MIN_BASELINE_ERRORS = 2


class Interval(NamedTuple):
    """A central interval among the quantile levels: [levels[lower], levels[upper]]."""

    lower: int  # index of tau
    upper: int  # index of 1 - tau
    name: str  # its nominal coverage in percent: "80" for 0.1 to 0.9


def level_name(level: float) -> str:
    """The name of a quantile level in metric names.

    >>> level_name(0.1), level_name(0.025)
    ('0.1', '0.025')
    """
    return f"{level:g}"


def central_intervals(levels: Sequence[float]) -> List[Interval]:
    """Every pair tau < 0.5 < 1 - tau among `levels`, widest first.

    >>> central_intervals([0.1, 0.25, 0.5, 0.75, 0.9])
    [Interval(lower=0, upper=4, name='80'), Interval(lower=1, upper=3, name='50')]
    """
    intervals = []
    for lower, level in enumerate(levels):
        if level >= 0.5:
            break
        for upper, other in enumerate(levels):
            if abs(level + other - 1.0) < 1e-9:
                intervals.append(Interval(lower, upper, f"{round(100 * (1 - 2 * level), 6):g}"))
    return intervals


def has_msis(levels: Sequence[float]) -> bool:
    """True when `levels` hold the 95% interval MSIS scores."""
    return all(any(abs(level - wanted) < 1e-9 for level in levels) for wanted in MSIS_LEVELS)


def interval_metric_names(levels: Sequence[float]) -> Tuple[str, ...]:
    """The interval metrics of a forecast at `levels` (none without levels).

    >>> interval_metric_names([0.1, 0.5, 0.9])
    ('wql', 'wql_0.1', 'wql_0.5', 'wql_0.9', 'coverage_80', 'width_80')
    """
    if not levels:
        return ()
    names = ["wql", *(f"wql_{level_name(level)}" for level in levels)]
    for interval in central_intervals(levels):
        names += [f"coverage_{interval.name}", f"width_{interval.name}"]
    if has_msis(levels):
        names.append("msis")
    return tuple(names)


def baseline_has_intervals(baseline: str, *, n_inputs: int, season: int) -> bool:
    """Whether a window of `n_inputs` holds enough in-sample errors for the baseline's intervals."""
    lag = 1 if baseline == "naive" else season
    return n_inputs - lag >= MIN_BASELINE_ERRORS


def metric_names(levels: Sequence[float] = (), *, n_inputs: int = 0, season: int = 1,
                 with_series: bool = False) -> Tuple[str, ...]:
    """Every metric an evaluation reports: the model's, then each baseline's; with quantile
    `levels`, the interval metrics of each too (a baseline's when `n_inputs` allows them);
    `with_series`, the `SERIES_METRICS` at the end.

    >>> metric_names()[:7]
    ('rmse', 'mae', 'mape', 'smape', 'mase', 'rmsse', 'naive_rmse')
    """
    intervals = interval_metric_names(levels)
    names = METRICS + intervals
    for baseline in BASELINES:
        names += tuple(f"{baseline}_{metric}" for metric in METRICS)
        if intervals and baseline_has_intervals(baseline, n_inputs=n_inputs, season=season):
            names += tuple(f"{baseline}_{metric}" for metric in intervals)
    return names + (SERIES_METRICS if with_series else ())


def naive_forecast(rawdata: tf.Tensor, *, n_outputs: int) -> tf.Tensor:
    """The last input value repeated over the horizon: [batch, n_inputs] -> [batch, n_outputs].

    >>> naive_forecast(tf.constant([[1., 2., 3.]]), n_outputs=2).numpy().tolist()
    [[3.0, 3.0]]
    """
    return tf.tile(rawdata[:, -1:], [1, n_outputs])


def seasonal_naive_forecast(rawdata: tf.Tensor, *, n_outputs: int, season: int) -> tf.Tensor:
    """Step h of the forecast is the input one season before it: the last `season` inputs repeated.

    >>> seasonal_naive_forecast(tf.constant([[1., 2., 3., 4.]]), n_outputs=3, season=2).numpy().tolist()
    [[3.0, 4.0, 3.0]]
    """
    n_inputs = rawdata.shape[1]
    if not 1 <= season <= n_inputs:
        raise ValueError(f"season {season} must be between 1 and n_inputs {n_inputs}")
    last_season = rawdata[:, n_inputs - season:]
    repeats = -(-n_outputs // season)  # ceil
    return tf.tile(last_season, [1, repeats])[:, :n_outputs]


def error_terms(actual: tf.Tensor, forecast: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Per-point terms [batch, n_outputs] whose means give the metrics: squared and absolute
    errors, absolute percentage errors and symmetric ones (both in percent)."""
    error = tf.abs(forecast - actual)
    magnitude = tf.abs(actual)
    zero = tf.zeros_like(error)
    percentage = tf.where(
        magnitude > 0, 100.0 * error / tf.where(magnitude > 0, magnitude, tf.ones_like(magnitude)),
        tf.where(error > 0, tf.fill(tf.shape(error), tf.constant(np.inf, error.dtype)), zero))
    denominator = magnitude + tf.abs(forecast)
    symmetric = tf.where(denominator > 0,
                         200.0 * error / tf.where(denominator > 0, denominator, tf.ones_like(error)),
                         zero)
    return {"squared": tf.square(error), "absolute": error, "percentage": percentage,
            "symmetric": symmetric}


def in_sample_naive_errors(rawdata: tf.Tensor, *, season: int) -> tf.Tensor:
    """x[t] - x[t - season] within each window's inputs: the scales without prepare.json."""
    return rawdata[:, season:] - rawdata[:, :-season]


def pinball_terms(actual: tf.Tensor, quantiles: tf.Tensor, levels: Sequence[float]) -> tf.Tensor:
    """pinball_tau(a, q) = max(tau (a - q), (tau - 1)(a - q)) per point and level: actual
    [batch, n], quantiles [batch, n, Q] -> [batch, n, Q].

    >>> pinball_terms(tf.constant([[1.0]], tf.float64), tf.constant([[[0.0, 2.0]]], tf.float64),
    ...               [0.1, 0.9]).numpy().round(6).tolist()
    [[[0.1, 0.1]]]
    """
    taus = tf.constant(list(levels), dtype=quantiles.dtype)
    difference = actual[..., None] - quantiles
    return tf.maximum(taus * difference, (taus - 1.0) * difference)


def row_quantiles(values: tf.Tensor, levels: Sequence[float]) -> tf.Tensor:
    """The empirical quantiles of each row, [batch, m] -> [batch, Q], interpolated linearly
    between order statistics (numpy's default method).

    >>> row_quantiles(tf.constant([[3., 1., 2., 4.]], tf.float64), [0.0, 0.5, 0.9]).numpy().tolist()
    [[1.0, 2.5, 3.7]]
    """
    count = values.shape[1]
    ordered = tf.sort(values, axis=1)
    positions = [level * (count - 1) for level in levels]
    below = [int(np.floor(position)) for position in positions]
    above = [min(index + 1, count - 1) for index in below]
    fraction = tf.constant([p - b for p, b in zip(positions, below)], dtype=values.dtype)
    low, high = tf.gather(ordered, below, axis=1), tf.gather(ordered, above, axis=1)
    return low + fraction * (high - low)


def baseline_quantiles(rawdata: tf.Tensor, point: tf.Tensor, levels: Sequence[float], *,
                       lag: int) -> tf.Tensor:
    """A naive forecast's quantiles [batch, n_outputs, Q]: the point forecast plus the empirical
    quantiles of the window's errors at `lag` (1: naive; season: seasonal naive), times sqrt of
    the number of lags ahead of each step.

    >>> inputs = tf.constant([[0.0, 1.0, 3.0, 4.0, 6.0]], tf.float64)  # errors at lag 1: 1, 2, 1, 2
    >>> point = naive_forecast(inputs, n_outputs=2)
    >>> baseline_quantiles(inputs, point, [0.0, 1.0], lag=1).numpy().round(3).tolist()
    [[[7.0, 8.0], [7.414, 8.828]]]
    """
    errors = rawdata[:, lag:] - rawdata[:, :-lag]
    quantiles = row_quantiles(errors, levels)  # [batch, Q]
    n_outputs = point.shape[1]
    lags_ahead = [(step - 1) // lag + 1 for step in range(1, n_outputs + 1)]
    factor = tf.constant(np.sqrt(lags_ahead), dtype=rawdata.dtype)
    return point[:, :, None] + factor[None, :, None] * quantiles[:, None, :]


def interval_terms(actual: tf.Tensor, quantiles: tf.Tensor, levels: Sequence[float]
                   ) -> Dict[str, tf.Tensor]:
    """Per-point terms [batch, n] whose means give the interval metrics (`interval_metrics`)."""
    terms = {"magnitude": tf.abs(actual)}
    pinball = pinball_terms(actual, quantiles, levels)
    for index in range(len(levels)):
        terms[f"pinball_{index}"] = pinball[..., index]
    for interval in central_intervals(levels):
        lower, upper = quantiles[..., interval.lower], quantiles[..., interval.upper]
        inside = tf.logical_and(actual >= lower, actual <= upper)
        terms[f"inside_{interval.name}"] = 100.0 * tf.cast(inside, actual.dtype)
        terms[f"width_{interval.name}"] = upper - lower
    return terms


def interval_scores(actual: tf.Tensor, quantiles: tf.Tensor, levels: Sequence[float]) -> tf.Tensor:
    """The interval score of the 95% interval per point [batch, n], whose scaled mean is MSIS."""
    lower = quantiles[..., _index_of(levels, MSIS_LEVELS[0])]
    upper = quantiles[..., _index_of(levels, MSIS_LEVELS[1])]
    zero = tf.zeros_like(actual)
    return ((upper - lower) + 2.0 / MSIS_ALPHA * tf.maximum(lower - actual, zero)
            + 2.0 / MSIS_ALPHA * tf.maximum(actual - upper, zero))


def _index_of(levels: Sequence[float], wanted: float) -> int:
    return next(i for i, level in enumerate(levels) if abs(level - wanted) < 1e-9)


def interval_metrics(means: Dict[str, tf.Tensor], levels: Sequence[float]) -> Dict[str, tf.Tensor]:
    """The pooled interval metrics (all of `interval_metric_names` but msis) from the means of
    `interval_terms`."""
    results = {}
    for index, level in enumerate(levels):
        results[f"wql_{level_name(level)}"] = 2.0 * means[f"pinball_{index}"] / means["magnitude"]
    results["wql"] = tf.add_n([results[f"wql_{level_name(level)}"] for level in levels]) / len(levels)
    for interval in central_intervals(levels):
        results[f"coverage_{interval.name}"] = means[f"inside_{interval.name}"]
        results[f"width_{interval.name}"] = means[f"width_{interval.name}"]
    return results


class _Forecast(NamedTuple):
    point: tf.Tensor
    quantiles: Optional[tf.Tensor]


def _forecasts(inputs: tf.Tensor, forecast: tf.Tensor, *, season: int,
               quantiles: Optional[tf.Tensor] = None, levels: Sequence[float] = ()
               ) -> Dict[str, _Forecast]:
    """The model's forecast and the baselines', by metric prefix."""
    n_outputs = forecast.shape[-1]
    n_inputs = inputs.shape[-1]
    naive = naive_forecast(inputs, n_outputs=n_outputs)
    seasonal = seasonal_naive_forecast(inputs, n_outputs=n_outputs, season=season)
    forecasts = {"": _Forecast(forecast, quantiles)}
    for baseline, point, lag in (("naive", naive, 1), ("seasonal_naive", seasonal, season)):
        with_intervals = quantiles is not None and baseline_has_intervals(
            baseline, n_inputs=n_inputs, season=season)
        forecasts[baseline + "_"] = _Forecast(
            point, baseline_quantiles(inputs, point, levels, lag=lag) if with_intervals else None)
    return forecasts


class SeriesInfo(NamedTuple):
    """Which series each window [batch] belongs to, and that series' in-sample scales
    (`trainer.data.series_scales`; 0 or NaN where it has none)."""

    index: tf.Tensor  # int64, 0 .. series_count - 1
    mase_scale: tf.Tensor  # mean |y[t] - y[t-season]| of its history
    rmsse_scale: tf.Tensor  # mean (y[t] - y[t-1])^2 of its history
    count: int  # how many series there are


# How the per-window values of each accumulator combine into one per series.
_SUM, _MAX = "sum", "max"


def _window_sums(*, actual: tf.Tensor, forecast: tf.Tensor, inputs: tf.Tensor, season: int,
                 mase_scale: Optional[float], rmsse_scale: Optional[float],
                 series: Optional[SeriesInfo], quantiles: Optional[tf.Tensor],
                 levels: Sequence[float]) -> Tuple[Dict[str, Tuple[tf.Tensor, str]], tf.Tensor, int]:
    """What each window adds to its series' accumulators: {name: (values [batch] float64,
    how they combine)}, the series of each window [batch] and the number of series."""
    actual, forecast, inputs = (tf.cast(x, tf.float64) for x in (actual, forecast, inputs))
    if quantiles is not None:
        quantiles = tf.cast(quantiles, tf.float64)
    batch = tf.shape(actual)[0]
    n_outputs = actual.shape[-1]
    values: Dict[str, Tuple[tf.Tensor, str]] = {
        "windows": (tf.ones([batch], tf.float64), _SUM),
        "points": (tf.fill([batch], tf.constant(float(n_outputs), tf.float64)), _SUM)}
    if series is not None:
        def usable(scale: tf.Tensor) -> tf.Tensor:
            scale = tf.cast(scale, tf.float64)
            return tf.where(tf.math.is_finite(scale) & (scale > 0), scale, tf.zeros_like(scale))

        values["mase_scale"] = (usable(series.mase_scale), _MAX)
        values["rmsse_scale"] = (usable(series.rmsse_scale), _MAX)
        segments, count = tf.cast(series.index, tf.int64), series.count
    else:
        segments, count = tf.zeros([batch], tf.int64), 1
        differences = in_sample_naive_errors(inputs, season=1)
        pooled = {"mase_scale": (mase_scale, tf.abs(in_sample_naive_errors(inputs, season=season))),
                  "rmsse_scale": (rmsse_scale, tf.square(differences))}
        for name, (given, in_window) in pooled.items():
            if given is None:  # the mean of the in-window errors: a sum and a count
                values[name + "_sum"] = (tf.reduce_sum(in_window, axis=1), _SUM)
                values[name + "_count"] = (tf.fill([batch], tf.constant(
                    float(in_window.shape[1]), tf.float64)), _SUM)
            else:
                values[name] = (tf.fill([batch], tf.constant(float(given), tf.float64)), _MAX)
    for prefix, predicted in _forecasts(inputs, forecast, season=season, quantiles=quantiles,
                                        levels=levels).items():
        terms = error_terms(actual, predicted.point)
        for name, term in (("abs", terms["absolute"]), ("sq", terms["squared"]),
                           ("pct", terms["percentage"]), ("sym", terms["symmetric"])):
            values[prefix + name] = (tf.reduce_sum(term, axis=1), _SUM)
        if predicted.quantiles is not None and has_msis(levels):
            values[prefix + "interval"] = (tf.reduce_sum(
                interval_scores(actual, predicted.quantiles, levels), axis=1), _SUM)
    return values, segments, count


def _reduce(values: tf.Tensor, segments: tf.Tensor, count: int, how: str) -> tf.Tensor:
    if how == _SUM:
        return tf.math.unsorted_segment_sum(values, segments, count)
    # Scales are >= 0: an empty series' lowest float becomes 0 (no scale).
    return tf.maximum(tf.math.unsorted_segment_max(values, segments, count),
                      tf.zeros([count], tf.float64))


def _mean_over(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """The mean of `values` [series] where `mask`; NaN where no series is."""
    chosen = tf.reduce_sum(tf.cast(mask, tf.float64))
    total = tf.reduce_sum(tf.where(mask, values, tf.zeros_like(values)))
    return tf.where(chosen > 0, total / tf.maximum(chosen, 1.0),
                    tf.constant(np.nan, tf.float64))


def _per_series(sums: Dict[str, tf.Tensor]) -> Dict[str, Tuple[tf.Tensor, tf.Tensor]]:
    """Every scale-free metric of every series, {name: (values [series], mask of the series
    it is defined for)}, from the accumulators."""
    points = sums["points"]
    evaluated = points > 0
    safe_points = tf.maximum(points, 1.0)
    scales = {}
    for name in ("mase_scale", "rmsse_scale"):
        if name in sums:
            scales[name] = sums[name]
        else:
            scales[name] = sums[name + "_sum"] / tf.maximum(sums[name + "_count"], 1.0)
    scaled = {name: evaluated & (scale > 0) for name, scale in scales.items()}
    safe = {name: tf.where(scaled[name], scale, tf.ones_like(scale)) for name, scale in scales.items()}
    results = {}
    for prefix in ("", "naive_", "seasonal_naive_"):
        results[prefix + "smape"] = (sums[prefix + "sym"] / safe_points, evaluated)
        results[prefix + "mase"] = (sums[prefix + "abs"] / safe_points / safe["mase_scale"],
                                    scaled["mase_scale"])
        results[prefix + "rmsse"] = (tf.sqrt(sums[prefix + "sq"] / safe_points
                                             / safe["rmsse_scale"]), scaled["rmsse_scale"])
        if prefix + "interval" in sums:
            results[prefix + "msis"] = (sums[prefix + "interval"] / safe_points
                                        / safe["mase_scale"], scaled["mase_scale"])
    return results


def _from_sums(sums: Dict[str, tf.Tensor], *, with_series: bool) -> Dict[str, tf.Tensor]:
    """Every metric of the accumulators (the interval metrics other than msis aside)."""
    points = tf.reduce_sum(sums["points"])
    results = {}
    for prefix in ("", "naive_", "seasonal_naive_"):
        results[prefix + "rmse"] = tf.sqrt(tf.reduce_sum(sums[prefix + "sq"]) / points)
        results[prefix + "mae"] = tf.reduce_sum(sums[prefix + "abs"]) / points
        results[prefix + "mape"] = tf.reduce_sum(sums[prefix + "pct"]) / points
    for name, (values, mask) in _per_series(sums).items():
        results[name] = _mean_over(values, mask)
    if with_series:
        evaluated = sums["points"] > 0
        count = tf.reduce_sum(tf.cast(evaluated, tf.float64))
        results["series_evaluated"] = count
        results["series_unscaled"] = count - tf.reduce_sum(tf.cast(
            evaluated & (sums["mase_scale"] > 0), tf.float64))
        for baseline in BASELINES:
            wins = evaluated & (sums["abs"] < sums[f"{baseline}_abs"])
            results[f"share_beating_{baseline}"] = (tf.reduce_sum(tf.cast(wins, tf.float64))
                                                    / tf.maximum(count, 1.0))
    return results


def _metric_variable(shape: List[int], name: str) -> tf.Variable:
    """A float64 accumulator of a streaming metric (zeroed with the local variables)."""
    return tf.compat.v1.Variable(
        tf.zeros(shape, tf.float64), trainable=False, name=name,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
                     tf.compat.v1.GraphKeys.METRIC_VARIABLES])


def metric_ops(*, actual: tf.Tensor, forecast: tf.Tensor, inputs: tf.Tensor, season: int,
               mase_scale: Optional[float], rmsse_scale: Optional[float] = None,
               series: Optional[SeriesInfo] = None, quantiles: Optional[tf.Tensor] = None,
               levels: Sequence[float] = ()) -> Dict[str, Tuple[tf.Tensor, tf.Operation]]:
    """Streaming Estimator metrics (value, update op) for the model and the baselines; with
    `series`, scored per series; with `quantiles` [batch, n_outputs, Q] at `levels`, the
    interval metrics too."""
    values, segments, count = _window_sums(
        actual=actual, forecast=forecast, inputs=inputs, season=season, mase_scale=mase_scale,
        rmsse_scale=rmsse_scale, series=series, quantiles=quantiles, levels=levels)
    sums, updates = {}, []
    with tf.compat.v1.variable_scope("per_series_metrics"):
        for name, (value, how) in values.items():
            variable = _metric_variable([count], name)
            batch = _reduce(value, segments, count, how)
            updates.append(variable.assign_add(batch) if how == _SUM else
                           variable.assign(tf.maximum(variable, batch)))
            sums[name] = variable.read_value()
    update = tf.group(*updates)
    ops = {name: (value, update) for name, value in
           _from_sums(sums, with_series=series is not None).items()}
    mean = tf.compat.v1.metrics.mean
    for prefix, predicted in _forecasts(inputs, forecast, season=season, quantiles=quantiles,
                                        levels=levels).items():
        if predicted.quantiles is None:
            continue
        streams = {name: mean(term) for name, term in
                   interval_terms(actual, predicted.quantiles, levels).items()}
        interval_update = tf.group(*(stream_update for _, stream_update in streams.values()))
        for name, value in interval_metrics({name: value for name, (value, _) in streams.items()},
                                            levels).items():
            ops[prefix + name] = (value, interval_update)
    return ops


def _whole_sums(*, actual, forecast, inputs, season: int, mase_scale: Optional[float],
                rmsse_scale: Optional[float], series: Optional[SeriesInfo], quantiles,
                levels: Sequence[float]) -> Dict[str, tf.Tensor]:
    values, segments, count = _window_sums(
        actual=actual, forecast=forecast, inputs=inputs, season=season, mase_scale=mase_scale,
        rmsse_scale=rmsse_scale, series=series, quantiles=quantiles, levels=levels)
    return {name: _reduce(value, segments, count, how) for name, (value, how) in values.items()}


def _arrays(actual, forecast, inputs, quantiles):
    tensors = [tf.constant(np.asarray(x, dtype=np.float64)) for x in (actual, forecast, inputs)]
    if quantiles is not None:
        quantiles = tf.constant(np.asarray(quantiles, dtype=np.float64))
    return (*tensors, quantiles)


def compute_metrics(*, actual, forecast, inputs, season: int, mase_scale: Optional[float],
                    rmsse_scale: Optional[float] = None, series: Optional[SeriesInfo] = None,
                    quantiles=None, levels: Sequence[float] = ()) -> Dict[str, float]:
    """The same metrics as `metric_ops`, on whole arrays [windows, steps] (float64); with
    `series` (of NumPy arrays [windows]) per series; with `quantiles` [windows, steps, Q] at
    `levels`, the interval metrics too."""
    actual, forecast, inputs, quantiles = _arrays(actual, forecast, inputs, quantiles)
    sums = _whole_sums(actual=actual, forecast=forecast, inputs=inputs, season=season,
                       mase_scale=mase_scale, rmsse_scale=rmsse_scale, series=series,
                       quantiles=quantiles, levels=levels)
    results = {name: float(value) for name, value in
               _from_sums(sums, with_series=series is not None).items()}
    for prefix, predicted in _forecasts(inputs, forecast, season=season, quantiles=quantiles,
                                        levels=levels).items():
        if predicted.quantiles is None:
            continue
        means = {name: tf.reduce_mean(term)
                 for name, term in interval_terms(actual, predicted.quantiles, levels).items()}
        for name, value in interval_metrics(means, levels).items():
            results[prefix + name] = float(value)
    return results


def per_series_metrics(*, actual, forecast, inputs, season: int, series: SeriesInfo,
                       quantiles=None, levels: Sequence[float] = ()) -> Dict[str, np.ndarray]:
    """Each series' own figures [series_count], as `compute_metrics` averages them: `windows`,
    `mae` and each scale-free metric for the model and the baselines (NaN where a series has
    no window, or no scale for that metric)."""
    actual, forecast, inputs, quantiles = _arrays(actual, forecast, inputs, quantiles)
    sums = _whole_sums(actual=actual, forecast=forecast, inputs=inputs, season=season,
                       mase_scale=None, rmsse_scale=None, series=series, quantiles=quantiles,
                       levels=levels)
    points = sums["points"].numpy()
    table = {"windows": sums["windows"].numpy().astype(np.int64)}
    with np.errstate(divide="ignore", invalid="ignore"):
        for prefix in ("", "naive_", "seasonal_naive_"):
            table[prefix + "mae"] = np.where(points > 0, sums[prefix + "abs"].numpy() / points,
                                             np.nan)
    for name, (values, mask) in _per_series(sums).items():
        table[name] = np.where(mask.numpy(), values.numpy(), np.nan)
    return table


def _widest_interval(metrics: Dict[str, float]) -> Optional[Tuple[float, float]]:
    """(nominal percent, coverage) of the widest central interval the model's figures hold."""
    nominal = [float(key.split("_", 1)[1]) for key in metrics
               if key.startswith("coverage_") and metrics[key] is not None]
    if not nominal:
        return None
    widest = max(nominal)
    return widest, metrics[f"coverage_{widest:g}"]


# An interval whose held-out coverage is further than this from nominal (in points) is flagged.
COVERAGE_TOLERANCE = 5.0


# What a losing run may try, each a change of the trainer's flags (`losing_advice`): the
# benchmark's shared optimizer setting, and the networks the model search ranks first.
TRY_OPTIMIZER = {"optimizer": SEARCH_OPTIMIZER, "learning_rate": 0.001}
TRY_MODEL_COUNT = 3


def losing_advice(run_flags: Optional[Mapping[str, Any]] = None) -> str:
    """What to try when a model loses to a baseline: changes of the trainer's flags, leaving
    out those the run had already (`run_flags`, its config; None when unknown).

    >>> losing_advice({"optimizer": "adam", "learning_rate": 0.001, "model": "dnn",
    ...                "n_inputs": 20, "train_steps": 6000, "season": 7})
    'another --model (nbeats, tide, patchtst), a longer --n_inputs (now 20) or more --train_steps (now 6000)'
    """
    flags = dict(run_flags or {})
    parts = []
    if any(flags.get(name) != value for name, value in TRY_OPTIMIZER.items()):
        parts.append(" ".join(f"--{name} {value}" for name, value in TRY_OPTIMIZER.items()))
    ranked = sorted((name for name, network in NETWORKS.items() if network.search_rank),
                    key=lambda name: NETWORKS[name].search_rank)
    models = [model for model in ranked if model != flags.get("model")][:TRY_MODEL_COUNT]
    parts.append(f"another --model ({', '.join(models)})")
    parts.append("a longer --n_inputs" + (f" (now {flags['n_inputs']})" if "n_inputs" in flags else ""))
    parts.append("more --train_steps" + (f" (now {flags['train_steps']})" if "train_steps" in flags
                                          else ""))
    advice = ", ".join(parts[:-1]) + " or " + parts[-1]
    if flags.get("season", 1) == 1:  # unknown or the default: the data's cycle may be missing
        advice += "; --season (7 for daily data with a weekly cycle) sets the seasonal baseline"
    return advice


def verdict(metrics: Dict[str, float], *, metric: str = "mase",
            run_flags: Optional[Mapping[str, Any]] = None) -> str:
    """Whether the model beats the naive and seasonal naive forecasts on `metric` (scale-free
    by default), and what to try when it loses (flags the run, `run_flags`, did not have
    already: `losing_advice`); then, a line each, on how many series it beats seasonal naive
    and whether its widest interval held its nominal share.

    >>> verdict({"mase": 0.8, "naive_mase": 1.0, "seasonal_naive_mase": 0.9})
    'beats the naive forecast (1.0000) and the seasonal naive forecast (0.9000) on mase (0.8000)'
    """
    if f"naive_{metric}" not in metrics:
        metric = "mase"
    value = metrics.get(metric)
    baselines = {"naive": metrics.get(f"naive_{metric}")}
    if metrics.get(f"seasonal_naive_{metric}") not in (None, baselines["naive"]):
        baselines["seasonal naive"] = metrics[f"seasonal_naive_{metric}"]
    baselines = {name: figure for name, figure in baselines.items()
                 if figure is not None and math.isfinite(figure)}
    lines = []
    if (metrics.get("series_evaluated") or 0) > 1:  # one series: the line above says it all
        count = int(metrics["series_evaluated"])
        share = metrics.get("share_beating_seasonal_naive")
        if share is not None:
            lines.append(f"better than seasonal naive on {round(share * count)} of {count} series "
                         f"({share:.0%}, by MAE)")
    if value is None or not math.isfinite(value):
        text = (f"no verdict: {metric} is undefined (no series has an in-sample scale); compare "
                "rmse and mae with the baselines' in the table")
    else:
        beaten = {name: figure for name, figure in baselines.items() if value >= figure}
        if not beaten:
            text = ("beats " + " and ".join(f"the {name} forecast ({figure:.4f})"
                                           for name, figure in baselines.items())
                    + f" on {metric} ({value:.4f})")
        else:
            name, figure = min(beaten.items(), key=lambda item: item[1])
            text = (f"WARNING: loses to the {name} forecast on {metric}: {value:.4f} against "
                    f"{figure:.4f}. Try {losing_advice(run_flags)}")
    interval = _widest_interval(metrics)
    if interval is not None and interval[1] is not None:
        nominal, coverage = interval
        if abs(coverage - nominal) > COVERAGE_TOLERANCE:
            lines.append(f"WARNING: its {nominal:g}% interval held {coverage:.1f}% of the values "
                         f"({'too narrow' if coverage < nominal else 'wider than it needs'}: read "
                         "its quantiles with care)")
        else:
            lines.append(f"its {nominal:g}% interval held {coverage:.1f}% of the values")
    return "\n".join([text, *lines])


def metrics_table(metrics: Dict[str, Optional[float]], levels: Sequence[float] = ()) -> List[str]:
    """The metrics as aligned lines: a row for the model and each baseline, a column per metric
    (then the interval metrics of `levels`, if any), n/a where a value is undefined.

    >>> print("\\n".join(metrics_table({"rmse": 1.5, "naive_rmse": 3.0, "mae": None})))
                            rmse         mae
    model                 1.5000         n/a
    naive                 3.0000         n/a
    """
    def cell(value: Optional[float]) -> str:
        return f"{value:>12.4f}" if value is not None else f"{'n/a':>12}"

    lines = []
    intervals = [name for name in interval_metric_names(levels) if not name.startswith("wql_")]
    for columns in ([name for name in METRICS if name in metrics], intervals):
        if not columns:
            continue
        lines.append(f"{'':16}" + "".join(f"{name:>12}" for name in columns))
        for prefix, label in [("", "model")] + [(f"{b}_", b) for b in BASELINES]:
            if prefix + columns[0] in metrics:
                lines.append(f"{label:16}" + "".join(cell(metrics.get(prefix + m)) for m in columns))
    if (metrics.get("series_evaluated") or 0) > 1:
        lines.append(f"smape, mase and rmsse are means over {metrics['series_evaluated']:.0f} series"
                     + (f" ({metrics['series_unscaled']:.0f} without an in-sample scale, left out "
                        "of mase and rmsse)" if metrics.get("series_unscaled") else "")
                     + "; rmse, mae and mape pool every point")
    return lines
