"""model_fn in every mode for every model, and the metrics against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.metrics import naive_forecast
from trainer.model.model_fn import StopAtLastStepHook, model_fn
from trainer.model.networks import NETWORKS
from trainer.model.optimizers import OPTIMIZERS
from trainer.model.spec import ModelSpec

BATCH, N_INPUTS, N_OUTPUTS, HIDDEN = 6, 9, 4, 5
MODES = tf.estimator.ModeKeys


def params(model="lstm", optimizer="sgd", clip_gradient_norm=5.0, **more) -> ModelSpec:
    return ModelSpec(model=model, hidden_units=HIDDEN, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS,
                     head="mse", optimizer=optimizer, learning_rate=0.05,
                     clip_gradient_norm=clip_gradient_norm, scaling="none", season=1, **more)


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


@pytest.mark.parametrize("model", NETWORKS)
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


@pytest.mark.parametrize("model", NETWORKS)
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


@pytest.mark.parametrize("model", NETWORKS)
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


def train_graph(params_, *, input_shape, label_shape):
    """A TRAIN graph of model_fn fed by placeholders; returns (graph, spec, inputs, labels)."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.create_global_step()
        inputs = tf.compat.v1.placeholder(tf.float32, input_shape)
        labels = tf.compat.v1.placeholder(tf.float32, label_shape)
        spec = model_fn({"rawdata": inputs}, labels, MODES.TRAIN, params_)
    return graph, spec, inputs, labels


def stacked_batches(steps, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(steps, BATCH, N_INPUTS)).astype(np.float32),
            rng.normal(size=(steps, BATCH, N_OUTPUTS)).astype(np.float32))


def variable_values(session):
    with session.graph.as_default():
        return {v.op.name: session.run(v) for v in session.graph.get_collection("variables")}


@pytest.mark.parametrize("model, optimizer", [("lstm", "sgd"), ("gru", "adam"),
                                              ("linear", "rmsprop")])
def test_several_steps_per_run_are_the_same_steps_as_one_per_run(model, optimizer):
    steps = 4
    inputs, labels = stacked_batches(steps, seed=7)
    one = train_graph(params(model, optimizer), input_shape=inputs.shape[1:],
                      label_shape=labels.shape[1:])
    loop = train_graph(params(model, optimizer, steps_per_run=steps, train_steps=1000),
                       input_shape=inputs.shape, label_shape=labels.shape)
    sessions = []
    for graph, *_ in (one, loop):
        session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            session.run(tf.compat.v1.global_variables_initializer())
        sessions.append(session)
    one_session, loop_session = sessions
    start = variable_values(one_session)
    assert set(start) == set(variable_values(loop_session))  # same variables, same names
    with loop[0].as_default():
        for variable in loop[0].get_collection("variables"):  # and the same starting point
            variable.load(start[variable.op.name], loop_session)

    _, one_spec, one_inputs, one_labels = one
    losses = [one_session.run([one_spec.loss, one_spec.train_op],
                              {one_inputs: inputs[step], one_labels: labels[step]})[0]
              for step in range(steps)]  # one step per run, the batches one by one
    _, loop_spec, loop_inputs, loop_labels = loop
    loop_loss, _ = loop_session.run([loop_spec.loss, loop_spec.train_op],
                                    {loop_inputs: inputs, loop_labels: labels})  # all in one run

    after_one, after_loop = variable_values(one_session), variable_values(loop_session)
    assert after_one["global_step"] == after_loop["global_step"] == steps
    for name, value in after_one.items():
        assert not np.array_equal(value, start[name]), f"{name} did not change"
        np.testing.assert_allclose(after_loop[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert loop_loss == pytest.approx(np.mean(losses), rel=1e-5)  # the run's mean loss


def test_several_steps_per_run_end_exactly_on_train_steps():
    inputs, labels = stacked_batches(4, seed=3)
    graph, spec, input_tensor, label_tensor = train_graph(
        params(steps_per_run=4, train_steps=6), input_shape=inputs.shape,
        label_shape=labels.shape)
    feed = {input_tensor: inputs, label_tensor: labels}
    assert [type(hook) for hook in spec.training_hooks] == [StopAtLastStepHook]
    with graph.as_default():
        global_step = tf.compat.v1.train.get_global_step().read_value()

        class RecordStep(tf.compat.v1.train.SessionRunHook):
            def after_run(self, run_context, run_values):
                steps_after_run.append(run_context.session.run(global_step))

        steps_after_run = []
        hooks = [*spec.training_hooks, RecordStep()]
        with tf.compat.v1.train.MonitoredSession(hooks=hooks) as session:
            while not session.should_stop():
                session.run(spec.train_op, feed)
        with tf.compat.v1.Session() as session:  # without the hook, a run past the end
            session.run(tf.compat.v1.global_variables_initializer())
            past_the_end = []
            for _ in range(3):
                session.run(spec.train_op, feed)
                past_the_end.append(session.run(global_step))
    assert steps_after_run == [4, 6]  # 4 steps, then the 2 left; the hook stops there
    assert past_the_end == [4, 6, 6]  # takes no step
