"""trainer.model.metrics against values computed by hand, streaming and whole-array alike."""

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.metrics import (
    SeriesInfo,
    baseline_has_intervals,
    baseline_quantiles,
    central_intervals,
    compute_metrics,
    has_msis,
    interval_metric_names,
    metric_names,
    metric_ops,
    naive_forecast,
    per_series_metrics,
    pinball_terms,
    row_quantiles,
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


# Interval metrics. Two windows of 2 steps, quantiles at 0.1, 0.5 and 0.9.
Q_LEVELS = (0.1, 0.5, 0.9)
Q_ACTUAL = np.array([[10.0, 20.0],
                     [30.0, 40.0]])
Q_QUANTILES = np.array([[[8.0, 11.0, 13.0], [21.0, 22.0, 25.0]],  # inside; below the 0.1 quantile
                        [[24.0, 28.0, 29.0], [35.0, 40.0, 44.0]]])  # above the 0.9 one; inside
Q_INPUTS = np.array([[1.0, 2.0, 4.0, 5.0],
                     [9.0, 7.0, 8.0, 6.0]])
# pinball_tau(a, q) = max(tau (a - q), (tau - 1)(a - q)); a - q per level:
#   a=10: 2, -1, -3   -> 0.1*2=0.2,    0.5*1=0.5, 0.1*3=0.3
#   a=20: -1, -2, -5  -> 0.9*1=0.9,    0.5*2=1.0, 0.1*5=0.5
#   a=30: 6, 2, 1     -> 0.1*6=0.6,    0.5*2=1.0, 0.9*1=0.9
#   a=40: 5, 0, -4    -> 0.1*5=0.5,    0,         0.1*4=0.4
PINBALL = np.array([[[0.2, 0.5, 0.3], [0.9, 1.0, 0.5]],
                    [[0.6, 1.0, 0.9], [0.5, 0.0, 0.4]]])
# Sums per level: 2.2, 2.5, 2.1; sum |a| = 100; wql_tau = 2 * sum / 100.
WQL = {"wql_0.1": 0.044, "wql_0.5": 0.05, "wql_0.9": 0.042, "wql": (0.044 + 0.05 + 0.042) / 3}
# [q0.1, q0.9] holds 10 and 40, not 20 or 30: 2 of 4; widths 5, 4, 5, 9 -> mean 23 / 4.
COVERAGE_80, WIDTH_80 = 50.0, 23 / 4


def test_pinball_terms_match_hand_computed_values():
    terms = pinball_terms(tf.constant(Q_ACTUAL), tf.constant(Q_QUANTILES), Q_LEVELS).numpy()
    assert terms.shape == (2, 2, 3)
    np.testing.assert_allclose(terms, PINBALL, rtol=1e-12, atol=1e-15)


def test_interval_metrics_match_hand_computed_values():
    result = compute_metrics(actual=Q_ACTUAL, forecast=Q_QUANTILES[..., 1], inputs=Q_INPUTS, season=1,
                             mase_scale=None, quantiles=Q_QUANTILES, levels=Q_LEVELS)
    for name, value in {**WQL, "coverage_80": COVERAGE_80, "width_80": WIDTH_80}.items():
        assert result[name] == pytest.approx(value, rel=1e-12), name
    # At 0.5 the wQL of the median is sum |a - f| / sum |a| = (1 + 2 + 2 + 0) / 100.
    assert result["wql_0.5"] == pytest.approx(result["mae"] * 4 / 100, rel=1e-12)
    assert "msis" not in result and "coverage_95" not in result
    assert set(result) == set(metric_names(Q_LEVELS, n_inputs=4, season=1))


def test_msis_matches_hand_computed_values():
    levels = (0.025, 0.5, 0.975)
    quantiles = np.array([[[8.0, 10.0, 12.0], [21.0, 23.0, 25.0]],  # inside; 1 below L = 21
                          [[25.0, 27.0, 28.0], [36.0, 40.0, 44.0]]])  # 2 above U = 28; inside
    # (U - L) + 2/0.05 (L - a)[a < L] + 2/0.05 (a - U)[a > U]:
    #   4;  4 + 40 * 1 = 44;  3 + 40 * 2 = 83;  8  -> mean 139 / 4 = 34.75, / scale 2.5 = 13.9
    result = compute_metrics(actual=Q_ACTUAL, forecast=quantiles[..., 1], inputs=Q_INPUTS, season=1,
                             mase_scale=2.5, quantiles=quantiles, levels=levels)
    assert result["msis"] == pytest.approx(13.9, rel=1e-12)
    assert result["coverage_95"] == pytest.approx(50.0)
    assert result["width_95"] == pytest.approx((4 + 4 + 3 + 8) / 4, rel=1e-12)
    assert has_msis(levels) and not has_msis((0.05, 0.5, 0.95)) and not has_msis((0.025, 0.5))
    assert interval_metric_names(levels)[-3:] == ("coverage_95", "width_95", "msis")
    assert "msis" not in compute_metrics(actual=Q_ACTUAL, forecast=Q_QUANTILES[..., 1], inputs=Q_INPUTS,
                                         season=1, mase_scale=2.5, quantiles=Q_QUANTILES,
                                         levels=Q_LEVELS)


def test_central_intervals_and_names():
    levels = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
    assert [(i.lower, i.upper, i.name) for i in central_intervals(levels)] == [
        (0, 6, "95"), (1, 5, "80"), (2, 4, "50")]
    assert central_intervals((0.1, 0.5, 0.8)) == []  # 0.1 has no 0.9
    assert interval_metric_names(()) == ()
    assert interval_metric_names((0.2, 0.4, 0.7)) == ("wql", "wql_0.2", "wql_0.4", "wql_0.7")


STREAM_LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
STREAM_WINDOWS, STREAM_INPUTS, STREAM_OUTPUTS, STREAM_SEASON = 5, 6, 3, 2


def stream_data(seed=0):
    """Float32-exact random windows; quantiles sorted along the levels."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(STREAM_WINDOWS, STREAM_INPUTS))
    actual = rng.normal(size=(STREAM_WINDOWS, STREAM_OUTPUTS))
    quantiles = np.sort(rng.normal(scale=1.5, size=(STREAM_WINDOWS, STREAM_OUTPUTS,
                                                    len(STREAM_LEVELS))), axis=-1)
    return tuple(x.astype(np.float32).astype(np.float64) for x in (inputs, actual, quantiles))


@pytest.mark.parametrize("mase_scale", [None, 1.5])
def test_streaming_interval_metrics_over_two_batches_equal_the_whole_array_values(mase_scale):
    inputs_value, actual_value, quantiles_value = stream_data()
    forecast_value = quantiles_value[..., 2]
    graph = tf.Graph()
    with graph.as_default():
        actual = tf.compat.v1.placeholder(tf.float32, [None, STREAM_OUTPUTS])
        forecast = tf.compat.v1.placeholder(tf.float32, [None, STREAM_OUTPUTS])
        inputs = tf.compat.v1.placeholder(tf.float32, [None, STREAM_INPUTS])
        quantiles = tf.compat.v1.placeholder(tf.float32, [None, STREAM_OUTPUTS, len(STREAM_LEVELS)])
        ops = metric_ops(actual=actual, forecast=forecast, inputs=inputs, season=STREAM_SEASON,
                         mase_scale=mase_scale, quantiles=quantiles, levels=STREAM_LEVELS)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.local_variables_initializer())
            for rows in (slice(0, 3), slice(3, 5)):  # batches of 3 and 2 windows
                session.run([update for _, update in ops.values()],
                            {actual: actual_value[rows], forecast: forecast_value[rows],
                             inputs: inputs_value[rows], quantiles: quantiles_value[rows]})
            values = session.run({name: value for name, (value, _) in ops.items()})
    whole = compute_metrics(actual=actual_value, forecast=forecast_value, inputs=inputs_value,
                            season=STREAM_SEASON, mase_scale=mase_scale, quantiles=quantiles_value,
                            levels=STREAM_LEVELS)
    names = set(metric_names(STREAM_LEVELS, n_inputs=STREAM_INPUTS, season=STREAM_SEASON))
    assert set(values) == set(whole) == names
    for prefix in ("", "naive_", "seasonal_naive_"):
        assert {prefix + name for name in ("wql", "wql_0.025", "wql_0.975", "coverage_95",
                                           "width_80", "msis")} <= names
    for name, value in whole.items():
        assert np.isfinite(value), name
        assert values[name] == pytest.approx(value, rel=2e-5, abs=1e-6), name


def numpy_baseline_quantiles(inputs, point, levels, lag, factors):
    errors = inputs[:, lag:] - inputs[:, :-lag]
    spread = np.quantile(errors, levels, axis=1).T  # [windows, Q]
    return point[:, :, None] + np.asarray(factors)[None, :, None] * spread[:, None, :]


def test_row_quantiles_match_numpy():
    rng = np.random.default_rng(4)
    levels = (0.0, 0.05, 0.29, 0.5, 0.7, 0.95, 1.0)
    for count in (2, 5, 11):
        values = rng.normal(size=(6, count))
        np.testing.assert_allclose(row_quantiles(tf.constant(values), levels).numpy(),
                                   np.quantile(values, levels, axis=1).T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lag, factors", [
    (1, np.sqrt([1, 2, 3, 4, 5, 6, 7])),
    (3, np.sqrt([1, 1, 1, 2, 2, 2, 3])),  # seasonal: sqrt of the seasons ahead
])
def test_baseline_quantiles_match_numpy(lag, factors):
    rng = np.random.default_rng(lag)
    levels = (0.05, 0.3, 0.5, 0.77, 0.95)
    inputs = rng.normal(size=(4, 10))
    point = (naive_forecast(tf.constant(inputs), n_outputs=7) if lag == 1 else
             seasonal_naive_forecast(tf.constant(inputs), n_outputs=7, season=lag))
    result = baseline_quantiles(tf.constant(inputs), point, levels, lag=lag).numpy()
    assert result.shape == (4, 7, 5)
    np.testing.assert_allclose(result, numpy_baseline_quantiles(inputs, point.numpy(), levels, lag,
                                                                factors), rtol=1e-12, atol=1e-12)


def test_baseline_interval_metrics_use_the_baseline_quantiles():
    rng = np.random.default_rng(8)
    levels, season, n_outputs = (0.1, 0.5, 0.9), 3, 7
    inputs = rng.normal(size=(5, 9))
    actual = rng.normal(size=(5, n_outputs))
    quantiles = np.sort(rng.normal(size=(5, n_outputs, 3)), axis=-1)
    result = compute_metrics(actual=actual, forecast=quantiles[..., 1], inputs=inputs, season=season,
                             mase_scale=None, quantiles=quantiles, levels=levels)
    seasonal_point = np.tile(inputs[:, -season:], (1, 3))[:, :n_outputs]
    for prefix, point, lag, factors in (
            ("naive_", np.repeat(inputs[:, -1:], n_outputs, axis=1), 1, np.sqrt(np.arange(1, 8))),
            ("seasonal_naive_", seasonal_point, season, np.sqrt([1, 1, 1, 2, 2, 2, 3]))):
        expected_q = numpy_baseline_quantiles(inputs, point, levels, lag, factors)
        difference = actual[..., None] - expected_q
        pinball = np.maximum(np.array(levels) * difference, (np.array(levels) - 1) * difference)
        wql = 2 * pinball.sum(axis=(0, 1)) / np.abs(actual).sum()
        for index, level in enumerate(("0.1", "0.5", "0.9")):
            assert result[f"{prefix}wql_{level}"] == pytest.approx(wql[index], rel=1e-10), prefix + level
        assert result[prefix + "wql"] == pytest.approx(wql.mean(), rel=1e-10)
        inside = (actual >= expected_q[..., 0]) & (actual <= expected_q[..., 2])
        assert result[prefix + "coverage_80"] == pytest.approx(100 * inside.mean(), rel=1e-12)
        assert result[prefix + "width_80"] == pytest.approx(
            np.mean(expected_q[..., 2] - expected_q[..., 0]), rel=1e-10)


def test_seasonal_naive_intervals_need_two_in_sample_errors():
    levels = (0.1, 0.5, 0.9)
    assert baseline_has_intervals("seasonal_naive", n_inputs=5, season=3)  # errors x4-x1, x5-x2
    assert not baseline_has_intervals("seasonal_naive", n_inputs=4, season=3)  # only x4-x1
    assert baseline_has_intervals("naive", n_inputs=4, season=3)
    assert not baseline_has_intervals("naive", n_inputs=2, season=1)
    assert "seasonal_naive_wql" in metric_names(levels, n_inputs=5, season=3)

    rng = np.random.default_rng(9)
    inputs, actual = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    quantiles = np.sort(rng.normal(size=(3, 2, 3)), axis=-1)
    names = metric_names(levels, n_inputs=4, season=3)
    assert "naive_wql" in names and "naive_coverage_80" in names
    assert not [name for name in names if name.startswith("seasonal_naive_") and
                name[len("seasonal_naive_"):] in interval_metric_names(levels)]
    assert {"seasonal_naive_mae", "seasonal_naive_mase"} <= set(names)
    result = compute_metrics(actual=actual, forecast=quantiles[..., 1], inputs=inputs, season=3,
                             mase_scale=None, quantiles=quantiles, levels=levels)
    assert set(result) == set(names)
    graph = tf.Graph()
    with graph.as_default():
        ops = metric_ops(actual=tf.constant(actual), forecast=tf.constant(quantiles[..., 1]),
                         inputs=tf.constant(inputs), season=3, mase_scale=None,
                         quantiles=tf.constant(quantiles), levels=levels)
    assert set(ops) == set(names)
    # Without quantiles, no interval metric at all.
    assert set(compute_metrics(actual=actual, forecast=quantiles[..., 1], inputs=inputs, season=3,
                               mase_scale=None)) == set(metric_names())


# Per series. Four series on very different scales: in-sample seasonal naive MAE 10, 1000,
# 100000 and 0 (a constant history), and MSE of the naive forecast 100, 1e6, 1e10 and 0.
# Series 0 has two windows, the others one; 2 steps each, 3 inputs, season 1.
S_INDEX = np.array([0, 0, 1, 2, 3])
S_MASE_SCALE = np.array([10.0, 10.0, 1000.0, 1e5, 0.0])
S_RMSSE_SCALE = np.array([100.0, 100.0, 1e6, 1e10, 0.0])
S_INPUTS = np.array([[80.0, 90.0, 95.0], [100.0, 110.0, 115.0], [4000.0, 4500.0, 5200.0],
                     [9e5, 1e6, 1.1e6], [7.0, 7.0, 7.0]])
S_ACTUAL = np.array([[100.0, 110.0], [120.0, 130.0], [5000.0, 5000.0], [1e6, 1e6], [7.0, 8.0]])
S_FORECAST = np.array([[90.0, 110.0], [120.0, 150.0], [6000.0, 4000.0], [1.05e6, 0.95e6], [7.0, 7.0]])
# |f - a|: [10, 0], [0, 20] | [1000, 1000] | [5e4, 5e4] | [0, 1].
# MASE per series: 30/4 / 10 = 0.75; 1000 / 1000 = 1; 5e4 / 1e5 = 0.5; series 3 has no scale.
S_MASE = (0.75 + 1.0 + 0.5) / 3
# RMSSE: sqrt((100 + 400)/4 / 100) = sqrt(1.25); sqrt(1e6 / 1e6) = 1; sqrt(2.5e9 / 1e10) = 0.5.
S_RMSSE = (math.sqrt(1.25) + 1.0 + 0.5) / 3
# sMAPE per series (series 3 counts: it needs no scale).
S_SMAPE_EACH = [100 / 4 * (2 * 10 / 190 + 2 * 20 / 280), 100 / 2 * (2 * 1000 / 11000 + 2 * 1000 / 9000),
                100 / 2 * (2 * 5e4 / 2.05e6 + 2 * 5e4 / 1.95e6), 100 / 2 * (2 * 1 / 15)]
S_SMAPE = sum(S_SMAPE_EACH) / 4


def series_info(index=S_INDEX, mase=S_MASE_SCALE, rmsse=S_RMSSE_SCALE, count=4):
    return SeriesInfo(index=index, mase_scale=mase, rmsse_scale=rmsse, count=count)


def numpy_series_scores(forecast, actual=S_ACTUAL):
    """The competitions' scores by their definitions, series by series, in plain NumPy."""
    mase, rmsse, smape, mae = [], [], [], []
    for series in range(4):
        rows = S_INDEX == series
        error = forecast[rows] - actual[rows]
        scale, scale2 = S_MASE_SCALE[rows][0], S_RMSSE_SCALE[rows][0]
        mae.append(np.mean(np.abs(error)))
        smape.append(np.mean(200 * np.abs(error) / (np.abs(actual[rows]) + np.abs(forecast[rows]))))
        if scale > 0:
            mase.append(mae[-1] / scale)
            rmsse.append(np.sqrt(np.mean(error ** 2) / scale2))
    return {"mase": np.mean(mase), "rmsse": np.mean(rmsse), "smape": np.mean(smape), "mae": mae}


def test_per_series_metrics_match_hand_computed_values_where_pooled_ones_disagree():
    result = compute_metrics(actual=S_ACTUAL, forecast=S_FORECAST, inputs=S_INPUTS, season=1,
                             mase_scale=None, series=series_info())
    assert result["mase"] == pytest.approx(S_MASE, rel=1e-12)
    assert result["rmsse"] == pytest.approx(S_RMSSE, rel=1e-12)
    assert result["smape"] == pytest.approx(S_SMAPE, rel=1e-12)
    assert result["series_evaluated"] == 4 and result["series_unscaled"] == 1
    # The pooled figures, which the largest series decides, say otherwise.
    pooled = compute_metrics(actual=S_ACTUAL, forecast=S_FORECAST, inputs=S_INPUTS, season=1,
                             mase_scale=float(np.mean(S_MASE_SCALE)))
    assert pooled["mase"] == pytest.approx(np.mean(np.abs(S_FORECAST - S_ACTUAL)) / np.mean(S_MASE_SCALE))
    assert abs(pooled["mase"] - result["mase"]) > 0.1
    assert abs(pooled["smape"] - result["smape"]) > 0.1
    # rmse and mae pool every point either way.
    assert result["mae"] == pytest.approx(np.mean(np.abs(S_FORECAST - S_ACTUAL)), rel=1e-12)
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean((S_FORECAST - S_ACTUAL) ** 2)), rel=1e-12)
    # The baselines by the same definitions, and the share of series the model beats them on.
    for prefix, point in (("naive_", np.repeat(S_INPUTS[:, -1:], 2, axis=1)),):
        expected_scores = numpy_series_scores(point)
        for name in ("mase", "rmsse", "smape"):
            assert result[prefix + name] == pytest.approx(expected_scores[name], rel=1e-12), prefix + name
    naive_mae = numpy_series_scores(np.repeat(S_INPUTS[:, -1:], 2, axis=1))["mae"]
    model_mae = numpy_series_scores(S_FORECAST)["mae"]
    wins = sum(m < n for m, n in zip(model_mae, naive_mae))
    assert result["share_beating_naive"] == pytest.approx(wins / 4)
    assert set(result) == set(metric_names(with_series=True))


def test_a_series_without_any_scale_leaves_the_scaled_metrics_undefined_not_infinite():
    only_constant = series_info(index=np.zeros(5, np.int64), mase=np.zeros(5), rmsse=np.full(5, np.nan),
                                count=1)
    result = compute_metrics(actual=S_ACTUAL, forecast=S_FORECAST, inputs=S_INPUTS, season=1,
                             mase_scale=None, series=only_constant)
    assert math.isnan(result["mase"]) and math.isnan(result["rmsse"])
    assert result["series_unscaled"] == 1 and math.isfinite(result["smape"])


def test_per_series_table_holds_each_series_figures():
    table = per_series_metrics(actual=S_ACTUAL, forecast=S_FORECAST, inputs=S_INPUTS, season=1,
                               series=series_info())
    assert table["windows"].tolist() == [2, 1, 1, 1]
    np.testing.assert_allclose(table["mase"][:3], [0.75, 1.0, 0.5], rtol=1e-12)
    assert math.isnan(table["mase"][3])
    np.testing.assert_allclose(table["smape"], S_SMAPE_EACH, rtol=1e-12)
    np.testing.assert_allclose(table["mae"], numpy_series_scores(S_FORECAST)["mae"], rtol=1e-12)
    assert np.nanmean(table["rmsse"]) == pytest.approx(S_RMSSE, rel=1e-12)


def test_streaming_per_series_metrics_over_batches_equal_the_whole_array_values():
    levels = (0.025, 0.5, 0.975)
    rng = np.random.default_rng(3)
    spread = np.sort(rng.uniform(0.5, 2.0, size=(5, 2, 3)), axis=-1) - 1.25
    quantiles = S_FORECAST[..., None] + spread * S_MASE_SCALE.max()
    quantiles[..., 1] = S_FORECAST
    graph = tf.Graph()
    with graph.as_default():
        actual = tf.compat.v1.placeholder(tf.float32, [None, 2])
        forecast = tf.compat.v1.placeholder(tf.float32, [None, 2])
        inputs = tf.compat.v1.placeholder(tf.float32, [None, 3])
        band = tf.compat.v1.placeholder(tf.float32, [None, 2, 3])
        index = tf.compat.v1.placeholder(tf.int64, [None])
        mase = tf.compat.v1.placeholder(tf.float64, [None])
        rmsse = tf.compat.v1.placeholder(tf.float64, [None])
        ops = metric_ops(actual=actual, forecast=forecast, inputs=inputs, season=1, mase_scale=None,
                         series=series_info(index, mase, rmsse), quantiles=band, levels=levels)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.local_variables_initializer())
            for rows in (slice(0, 1), slice(1, 4), slice(4, 5)):  # series 0 spans two batches
                session.run([update for _, update in ops.values()], {
                    actual: S_ACTUAL[rows], forecast: S_FORECAST[rows], inputs: S_INPUTS[rows],
                    band: quantiles[rows], index: S_INDEX[rows], mase: S_MASE_SCALE[rows],
                    rmsse: S_RMSSE_SCALE[rows]})
            values = session.run({name: value for name, (value, _) in ops.items()})
    whole = compute_metrics(actual=S_ACTUAL, forecast=S_FORECAST, inputs=S_INPUTS, season=1,
                            mase_scale=None, series=series_info(), quantiles=quantiles, levels=levels)
    assert set(values) == set(whole)
    assert {"msis", "naive_msis", "mase", "rmsse", "share_beating_seasonal_naive"} <= set(whole)
    assert values["mase"] == pytest.approx(S_MASE, rel=1e-6)
    for name, value in whole.items():
        if math.isnan(value):
            assert math.isnan(values[name]), name
        else:
            assert values[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
