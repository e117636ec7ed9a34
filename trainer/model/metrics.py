"""How good a forecast is: RMSE, MAE, MAPE, sMAPE and MASE, for the model and two baselines.

One definition serves both the Estimator's evaluation (`metric_ops`, streaming over batches)
and `python -m trainer.evaluate` (`compute_metrics`, on arrays): both average the same
per-point terms (`error_terms`) over every window and every step, nothing dropped.

- `rmse` = sqrt(mean((f - a)^2)); `mae` = mean(|f - a|), in the series' units.
- `mape` = 100 * mean(|f - a| / |a|), in percent; infinite when an actual value is 0 and its
  forecast is not (a point where both are 0 counts 0).
- `smape` = 100 * mean(2 |f - a| / (|a| + |f|)), in percent, between 0 and 200; 0 where both are 0.
- `mase` = mae / scale, where scale is the in-sample MAE of the seasonal naive forecast
  (|y[t] - y[t - season]|) over the training split, from prepare.json; without it, the same
  mean over the inputs of the evaluated windows. Below 1: better than the seasonal naive
  forecast one season back, in sample.

Baselines, on the same windows: `naive` repeats the last input value; `seasonal_naive` repeats
the last `season` input values. Their metrics are prefixed: `naive_rmse`, `seasonal_naive_mase`...

Interval metrics, for a forecast of quantiles q_tau (levels tau, e.g. 0.1, 0.5, 0.9):

- `wql_<tau>` = 2 * sum(pinball_tau(a, q_tau)) / sum(|a|), the weighted quantile loss of
  DeepAR and GluonTS, where pinball_tau(a, q) = max(tau (a - q), (tau - 1)(a - q)); `wql` is its
  mean over the levels. At tau 0.5 it is sum|a - f| / sum|a|. Undefined (NaN) when every
  actual value is 0.
- For each central interval [q_tau, q_(1-tau)] among the levels, named by its nominal percent
  p = 100 (1 - 2 tau): `coverage_<p>` = the share of actual values inside it (in percent, to
  compare with p) and `width_<p>` = mean(q_(1-tau) - q_tau), in the series' units.
- `msis` (with the levels 0.025 and 0.975; the M4 competition's definition, alpha = 0.05) =
  mean((U - L) + 2/alpha (L - a) [a < L] + 2/alpha (a - U) [a > U]) / scale, with the MASE scale.

The baselines get intervals too: the empirical quantiles (numpy's "linear" method) of each
window's own in-sample errors, x[t] - x[t-1] for `naive` and x[t] - x[t-season] for
`seasonal_naive`, added to the point forecast and widened like a random walk's, by sqrt(h) at
step h (sqrt(k) for the seasonal one, k = the number of seasons ahead), as in Hyndman and
Athanasopoulos, Forecasting: Principles and Practice, 5.5.

>>> compute_metrics(actual=[[2., 4.]], forecast=[[1., 4.]], inputs=[[1., 3.]], season=1,
...                 mase_scale=2.0)["mae"]
0.5
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

METRICS = ("rmse", "mae", "mape", "smape", "mase")
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


def metric_names(levels: Sequence[float] = (), *, n_inputs: int = 0, season: int = 1
                 ) -> Tuple[str, ...]:
    """Every metric an evaluation reports: the model's, then each baseline's; with quantile
    `levels`, the interval metrics of each too (a baseline's when `n_inputs` allows them).

    >>> metric_names()[:6]
    ('rmse', 'mae', 'mape', 'smape', 'mase', 'naive_rmse')
    """
    intervals = interval_metric_names(levels)
    names = METRICS + intervals
    for baseline in BASELINES:
        names += tuple(f"{baseline}_{metric}" for metric in METRICS)
        if intervals and baseline_has_intervals(baseline, n_inputs=n_inputs, season=season):
            names += tuple(f"{baseline}_{metric}" for metric in intervals)
    return names


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
    """|x[t] - x[t - season]| within each window's inputs: the MASE scale without prepare.json."""
    return tf.abs(rawdata[:, season:] - rawdata[:, :-season])


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
    if has_msis(levels):
        lower = quantiles[..., _index_of(levels, MSIS_LEVELS[0])]
        upper = quantiles[..., _index_of(levels, MSIS_LEVELS[1])]
        zero = tf.zeros_like(actual)
        terms["interval_score"] = ((upper - lower)
                                   + 2.0 / MSIS_ALPHA * tf.maximum(lower - actual, zero)
                                   + 2.0 / MSIS_ALPHA * tf.maximum(actual - upper, zero))
    return terms


def _index_of(levels: Sequence[float], wanted: float) -> int:
    return next(i for i, level in enumerate(levels) if abs(level - wanted) < 1e-9)


def interval_metrics(means: Dict[str, tf.Tensor], levels: Sequence[float], *, scale: tf.Tensor
                     ) -> Dict[str, tf.Tensor]:
    """The interval metrics (`interval_metric_names`) from the means of `interval_terms`."""
    results = {}
    for index, level in enumerate(levels):
        results[f"wql_{level_name(level)}"] = 2.0 * means[f"pinball_{index}"] / means["magnitude"]
    results["wql"] = tf.add_n([results[f"wql_{level_name(level)}"] for level in levels]) / len(levels)
    for interval in central_intervals(levels):
        results[f"coverage_{interval.name}"] = means[f"inside_{interval.name}"]
        results[f"width_{interval.name}"] = means[f"width_{interval.name}"]
    if has_msis(levels):
        results["msis"] = means["interval_score"] / scale
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


def metric_ops(*, actual: tf.Tensor, forecast: tf.Tensor, inputs: tf.Tensor, season: int,
               mase_scale: Optional[float], quantiles: Optional[tf.Tensor] = None,
               levels: Sequence[float] = ()) -> Dict[str, Tuple[tf.Tensor, tf.Operation]]:
    """Streaming Estimator metrics (value, update op) for the model and the baselines; with
    `quantiles` [batch, n_outputs, Q] at `levels`, the interval metrics too."""
    mean = tf.compat.v1.metrics.mean
    if mase_scale is None:
        scale_value, scale_update = mean(in_sample_naive_errors(inputs, season=season))
    else:
        scale_value, scale_update = tf.constant(float(mase_scale)), tf.no_op()
    ops = {}
    for prefix, predicted in _forecasts(inputs, forecast, season=season, quantiles=quantiles,
                                        levels=levels).items():
        terms = error_terms(actual, predicted.point)
        mse_value, mse_update = mean(terms["squared"])
        mae_value, mae_update = mean(terms["absolute"])
        ops[prefix + "rmse"] = (tf.sqrt(mse_value), mse_update)
        ops[prefix + "mae"] = (mae_value, mae_update)
        ops[prefix + "mape"] = mean(terms["percentage"])
        ops[prefix + "smape"] = mean(terms["symmetric"])
        ops[prefix + "mase"] = (mae_value / scale_value, tf.group(mae_update, scale_update))
        if predicted.quantiles is None:
            continue
        streams = {name: mean(term) for name, term in
                   interval_terms(actual, predicted.quantiles, levels).items()}
        update = tf.group(scale_update, *(update for _, update in streams.values()))
        values = interval_metrics({name: value for name, (value, _) in streams.items()}, levels,
                                  scale=scale_value)
        for name, value in values.items():
            ops[prefix + name] = (value, update)
    return ops


def compute_metrics(*, actual, forecast, inputs, season: int, mase_scale: Optional[float],
                    quantiles=None, levels: Sequence[float] = ()) -> Dict[str, float]:
    """The same metrics as `metric_ops`, on whole arrays [windows, steps] (float64); with
    `quantiles` [windows, steps, Q] at `levels`, the interval metrics too."""
    actual, forecast, inputs = (tf.constant(np.asarray(x, dtype=np.float64))
                                for x in (actual, forecast, inputs))
    if quantiles is not None:
        quantiles = tf.constant(np.asarray(quantiles, dtype=np.float64))
    if mase_scale is None:
        mase_scale = float(tf.reduce_mean(in_sample_naive_errors(inputs, season=season)))
    results = {}
    for prefix, predicted in _forecasts(inputs, forecast, season=season, quantiles=quantiles,
                                        levels=levels).items():
        terms = {name: float(tf.reduce_mean(term))
                 for name, term in error_terms(actual, predicted.point).items()}
        results[prefix + "rmse"] = float(np.sqrt(terms["squared"]))
        results[prefix + "mae"] = terms["absolute"]
        results[prefix + "mape"] = terms["percentage"]
        results[prefix + "smape"] = terms["symmetric"]
        with np.errstate(divide="ignore", invalid="ignore"):  # a 0 scale gives inf, as in the graph
            results[prefix + "mase"] = float(np.float64(terms["absolute"]) / np.float64(mase_scale))
        if predicted.quantiles is None:
            continue
        means = {name: tf.reduce_mean(term)
                 for name, term in interval_terms(actual, predicted.quantiles, levels).items()}
        for name, value in interval_metrics(means, levels, scale=tf.constant(
                mase_scale, tf.float64)).items():
            results[prefix + name] = float(value)
    return results


def verdict(metrics: Dict[str, float]) -> str:
    """Whether the model beats the naive and seasonal naive forecasts, plainly, and what to try
    when it does not."""
    baselines = {"naive": metrics.get("naive_rmse")}
    if metrics.get("seasonal_naive_rmse") not in (None, metrics.get("naive_rmse")):
        baselines["seasonal naive"] = metrics["seasonal_naive_rmse"]
    beaten = {name: value for name, value in baselines.items() if value is not None
              and metrics["rmse"] >= value}
    if not beaten:
        return "beats " + " and ".join(f"the {name} forecast ({value:.4f})"
                                       for name, value in baselines.items()) + " on rmse"
    name, value = min(beaten.items(), key=lambda item: item[1])
    return (f"WARNING: loses to the {name} forecast: rmse {metrics['rmse']:.4f} against "
            f"{value:.4f}. Try --scaling window_zscore, --optimizer adam --learning_rate 0.001, "
            "another --model (linear, dnn), a longer --n_inputs or more --train_steps; "
            "--season sets the seasonal baseline")


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
    return lines
