"""trainer.model.metrics against values computed by hand, streaming and whole-array alike."""

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.metrics import (
    compute_metrics,
    metric_names,
    metric_ops,
    naive_forecast,
    seasonal_naive_forecast,
)

# Two windows of 4 inputs and 3 outputs; season 2.
INPUTS = np.array([[1.0, 2.0, 3.0, 4.0],
                   [10.0, 8.0, 10.0, 8.0]])
ACTUAL = np.array([[5.0, 6.0, 8.0],
                   [10.0, 8.0, 10.0]])
FORECAST = np.array([[4.0, 6.0, 10.0],
                     [9.0, 8.0, 10.0]])
# Errors |f - a|: [1, 0, 2], [1, 0, 0] -> 6 points, sum 4, sum of squares 6.
MAE = 4 / 6
RMSE = math.sqrt(6 / 6)
MAPE = 100 / 6 * (1 / 5 + 0 + 2 / 8 + 1 / 10 + 0 + 0)
SMAPE = 100 / 6 * (2 / 9 + 0 + 4 / 18 + 2 / 19 + 0 + 0)
# In-sample seasonal naive (season 2) within the inputs: |3-1|,|4-2|,|10-10|,|8-8| -> mean 1.
WINDOW_SCALE = 1.0
# Naive forecast: [4, 4, 4], [8, 8, 8]; errors [1, 2, 4], [2, 0, 2] -> sum 11, squares 29.
NAIVE_MAE, NAIVE_RMSE = 11 / 6, math.sqrt(29 / 6)
NAIVE_MAPE = 100 / 6 * (1 / 5 + 2 / 6 + 4 / 8 + 2 / 10 + 0 + 2 / 10)
# Seasonal naive (season 2): [3, 4, 3], [10, 8, 10] -> errors [2, 2, 5], [0, 0, 0]: sum 9, squares 33.
SEASONAL_MAE, SEASONAL_RMSE = 9 / 6, math.sqrt(33 / 6)


def expected(mase_scale):
    return {"rmse": RMSE, "mae": MAE, "mape": MAPE, "smape": SMAPE, "mase": MAE / mase_scale,
            "naive_rmse": NAIVE_RMSE, "naive_mae": NAIVE_MAE, "naive_mape": NAIVE_MAPE,
            "naive_mase": NAIVE_MAE / mase_scale,
            "seasonal_naive_rmse": SEASONAL_RMSE, "seasonal_naive_mae": SEASONAL_MAE,
            "seasonal_naive_mase": SEASONAL_MAE / mase_scale}


def test_baseline_forecasts():
    inputs = tf.constant(INPUTS)
    np.testing.assert_array_equal(naive_forecast(inputs, n_outputs=3).numpy(), [[4, 4, 4], [8, 8, 8]])
    np.testing.assert_array_equal(seasonal_naive_forecast(inputs, n_outputs=3, season=2).numpy(),
                                  [[3, 4, 3], [10, 8, 10]])
    np.testing.assert_array_equal(seasonal_naive_forecast(inputs, n_outputs=5, season=4).numpy(),
                                  [[1, 2, 3, 4, 1], [10, 8, 10, 8, 10]])


@pytest.mark.parametrize("mase_scale", [None, 0.5])
def test_compute_metrics_matches_hand_computed_values(mase_scale):
    result = compute_metrics(actual=ACTUAL, forecast=FORECAST, inputs=INPUTS, season=2,
                             mase_scale=mase_scale)
    assert set(result) == set(metric_names())
    for name, value in expected(mase_scale or WINDOW_SCALE).items():
        assert result[name] == pytest.approx(value, rel=1e-12), name


def test_streaming_metrics_over_two_batches_equal_the_whole_array_values():
    graph = tf.Graph()
    with graph.as_default():
        actual = tf.compat.v1.placeholder(tf.float32, [None, 3])
        forecast = tf.compat.v1.placeholder(tf.float32, [None, 3])
        inputs = tf.compat.v1.placeholder(tf.float32, [None, 4])
        ops = metric_ops(actual=actual, forecast=forecast, inputs=inputs, season=2, mase_scale=None)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.local_variables_initializer())
            for row in range(2):  # one window per batch
                session.run([update for _, update in ops.values()],
                            {actual: ACTUAL[row:row + 1], forecast: FORECAST[row:row + 1],
                             inputs: INPUTS[row:row + 1]})
            values = session.run({name: value for name, (value, _) in ops.items()})
    assert set(values) == set(metric_names())
    for name, value in expected(WINDOW_SCALE).items():
        assert values[name] == pytest.approx(value, rel=1e-5), name


def test_zero_actual_values():
    result = compute_metrics(actual=[[0.0, 0.0]], forecast=[[0.0, 1.0]], inputs=[[1.0, 1.0]],
                             season=1, mase_scale=1.0)
    assert result["mape"] == math.inf  # 1 off an actual 0: no finite percentage
    assert result["smape"] == pytest.approx(100.0)  # (0 + 200) / 2: 0/0 counts 0
    assert compute_metrics(actual=[[0.0]], forecast=[[0.0]], inputs=[[1.0, 2.0]], season=1,
                           mase_scale=1.0)["mape"] == 0.0
