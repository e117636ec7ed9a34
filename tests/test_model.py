"""model_fn in every mode for every model, and the metrics against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.config import MODELS, OPTIMIZERS
from trainer.model import model_fn, naive_forecast

BATCH, N_INPUTS, N_OUTPUTS, HIDDEN = 6, 9, 4, 5
MODES = tf.estimator.ModeKeys


def params(model="lstm", optimizer="sgd", clip_gradient_norm=5.0):
    return {"model": model, "hidden_units": HIDDEN, "n_inputs": N_INPUTS, "n_outputs": N_OUTPUTS,
            "optimizer": optimizer, "learning_rate": 0.05, "clip_gradient_norm": clip_gradient_norm}


def data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(BATCH, N_INPUTS)).astype(np.float32),
            rng.normal(size=(BATCH, N_OUTPUTS)).astype(np.float32))


def build(mode, model="lstm", **kwargs):
    """Build model_fn in a fresh graph; returns (graph, spec, inputs, labels)."""
    inputs, labels = data()
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.create_global_step()
        spec = model_fn({"rawdata": tf.constant(inputs)},
                        None if mode == MODES.PREDICT else tf.constant(labels),
                        mode, params(model, **kwargs))
    return graph, spec, inputs, labels


@pytest.mark.parametrize("model", MODELS)
def test_predict_mode_builds_predictions_and_exports_only(model):
    graph, spec, _, _ = build(MODES.PREDICT, model)
    assert spec.loss is None and spec.train_op is None and not spec.eval_metric_ops
    assert set(spec.predictions) == {"predicted"}
    assert set(spec.export_outputs) == {"serving_default"}
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        predicted = session.run(spec.predictions["predicted"])
    assert predicted.shape == (BATCH, N_OUTPUTS)
    assert np.all(np.isfinite(predicted))


@pytest.mark.parametrize("model", MODELS)
def test_train_mode_step_lowers_the_loss_on_a_fixed_batch(model):
    graph, spec, _, _ = build(MODES.TRAIN, model)
    assert spec.train_op is not None and not spec.eval_metric_ops
    assert spec.loss.shape == ()
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        losses = [session.run([spec.loss, spec.train_op])[0] for _ in range(20)]
        step = session.run(tf.compat.v1.train.get_global_step())
    assert step == 20
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("model", MODELS)
def test_eval_mode_metrics_match_numpy(model):
    graph, spec, inputs, labels = build(MODES.EVAL, model)
    assert spec.train_op is None
    assert {"rmse", "mae", "naive_rmse", "mase", "seasonal_naive_smape"} <= set(spec.eval_metric_ops)
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        session.run(tf.compat.v1.local_variables_initializer())
        session.run([update for _, update in spec.eval_metric_ops.values()])
        metrics = session.run({k: value for k, (value, _) in spec.eval_metric_ops.items()})
        predicted, loss = session.run([spec.predictions["predicted"], spec.loss])
    naive = np.repeat(inputs[:, -1:], N_OUTPUTS, axis=1)
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - labels) ** 2)), rel=1e-5)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(predicted - labels)), rel=1e-5)
    assert metrics["naive_rmse"] == pytest.approx(np.sqrt(np.mean((naive - labels) ** 2)), rel=1e-5)
    assert loss == pytest.approx(metrics["rmse"] ** 2, rel=1e-4)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(optimizer):
    graph, spec, _, _ = build(MODES.TRAIN, "linear", optimizer=optimizer, clip_gradient_norm=0.0)
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        losses = [session.run([spec.loss, spec.train_op])[0] for _ in range(10)]
    assert losses[-1] < losses[0]


def test_lstm_is_the_papers_model():
    """One LSTM cell's weights plus a matmul weight [hidden, n_outputs] and a bias [n_outputs]."""
    graph, _, _, _ = build(MODES.PREDICT, "lstm")
    shapes = {v.name: v.shape.as_list() for v in graph.get_collection("trainable_variables")}
    assert shapes["lstm/weight:0"] == [HIDDEN, N_OUTPUTS]
    assert shapes["lstm/bias:0"] == [N_OUTPUTS]
    assert sorted(s for name, s in shapes.items() if "lstm_cell" in name) == sorted(
        [[1, 4 * HIDDEN], [HIDDEN, 4 * HIDDEN], [4 * HIDDEN]])


def test_naive_forecast_repeats_the_last_value():
    result = naive_forecast(tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), n_outputs=4)
    np.testing.assert_array_equal(result.numpy(), [[3.0] * 4, [6.0] * 4])
