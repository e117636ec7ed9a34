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

>>> compute_metrics(actual=[[2., 4.]], forecast=[[1., 4.]], inputs=[[1., 3.]], season=1,
...                 mase_scale=2.0)["mae"]
0.5
"""

from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

METRICS = ("rmse", "mae", "mape", "smape", "mase")
BASELINES = ("naive", "seasonal_naive")


def metric_names() -> Tuple[str, ...]:
    """Every metric an evaluation reports: the model's, then each baseline's.

    >>> metric_names()[:6]
    ('rmse', 'mae', 'mape', 'smape', 'mase', 'naive_rmse')
    """
    return METRICS + tuple(f"{baseline}_{metric}" for baseline in BASELINES for metric in METRICS)


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


def _forecasts(inputs: tf.Tensor, forecast: tf.Tensor, *, season: int) -> Dict[str, tf.Tensor]:
    n_outputs = forecast.shape[-1]
    return {"": forecast, "naive_": naive_forecast(inputs, n_outputs=n_outputs),
            "seasonal_naive_": seasonal_naive_forecast(inputs, n_outputs=n_outputs, season=season)}


def metric_ops(*, actual: tf.Tensor, forecast: tf.Tensor, inputs: tf.Tensor, season: int,
               mase_scale: Optional[float]) -> Dict[str, Tuple[tf.Tensor, tf.Operation]]:
    """Streaming Estimator metrics (value, update op) for the model and the baselines."""
    mean = tf.compat.v1.metrics.mean
    if mase_scale is None:
        scale_value, scale_update = mean(in_sample_naive_errors(inputs, season=season))
    else:
        scale_value, scale_update = tf.constant(float(mase_scale)), tf.no_op()
    ops = {}
    for prefix, predicted in _forecasts(inputs, forecast, season=season).items():
        terms = error_terms(actual, predicted)
        mse_value, mse_update = mean(terms["squared"])
        mae_value, mae_update = mean(terms["absolute"])
        ops[prefix + "rmse"] = (tf.sqrt(mse_value), mse_update)
        ops[prefix + "mae"] = (mae_value, mae_update)
        ops[prefix + "mape"] = mean(terms["percentage"])
        ops[prefix + "smape"] = mean(terms["symmetric"])
        ops[prefix + "mase"] = (mae_value / scale_value, tf.group(mae_update, scale_update))
    return ops


def compute_metrics(*, actual, forecast, inputs, season: int, mase_scale: Optional[float]
                    ) -> Dict[str, float]:
    """The same metrics as `metric_ops`, on whole arrays [windows, steps] (float64)."""
    actual, forecast, inputs = (tf.constant(np.asarray(x, dtype=np.float64))
                                for x in (actual, forecast, inputs))
    if mase_scale is None:
        mase_scale = float(tf.reduce_mean(in_sample_naive_errors(inputs, season=season)))
    results = {}
    for prefix, predicted in _forecasts(inputs, forecast, season=season).items():
        terms = {name: float(tf.reduce_mean(term)) for name, term in error_terms(actual, predicted).items()}
        results[prefix + "rmse"] = float(np.sqrt(terms["squared"]))
        results[prefix + "mae"] = terms["absolute"]
        results[prefix + "mape"] = terms["percentage"]
        results[prefix + "smape"] = terms["symmetric"]
        with np.errstate(divide="ignore", invalid="ignore"):  # a 0 scale gives inf, as in the graph
            results[prefix + "mase"] = float(np.float64(terms["absolute"]) / np.float64(mase_scale))
    return results
