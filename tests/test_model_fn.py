"""model_fn in every mode for every model, and the metrics against hand-computed values."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.metrics import compute_metrics, metric_names, naive_forecast
from trainer.model.model_fn import StopAtLastStepHook, model_fn
from trainer.model.networks import NETWORKS
from trainer.model.optimizers import OPTIMIZERS
from trainer.model.spec import ModelSpec

BATCH, N_INPUTS, N_OUTPUTS, HIDDEN = 6, 9, 4, 5
MODES = tf.estimator.ModeKeys


def params(model="lstm", optimizer="sgd", clip_gradient_norm=5.0, head="mse", scaling="none",
           **more) -> ModelSpec:
    return ModelSpec(model=model, hidden_units=HIDDEN, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS,
                     head=head, optimizer=optimizer, learning_rate=0.05,
                     clip_gradient_norm=clip_gradient_norm, scaling=scaling, season=1, **more)


def data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(BATCH, N_INPUTS)).astype(np.float32),
            rng.normal(size=(BATCH, N_OUTPUTS)).astype(np.float32))


def build(mode, model="lstm", *, scale=1.0, **kwargs):
    """Build model_fn in a fresh graph (inputs and labels times `scale`); returns
    (graph, spec, inputs, labels)."""
    inputs, labels = (x * np.float32(scale) for x in data())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(1)
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


def sessions_from_one_start(one, loop):
    """Sessions on the graphs of `one` and `loop`, the second's variables loaded with the first's
    initial values; returns (one's session, loop's session, those values)."""
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
    return one_session, loop_session, start


@pytest.mark.parametrize("model, optimizer", [("lstm", "sgd"), ("gru", "adam"),
                                              ("linear", "rmsprop")])
def test_several_steps_per_run_are_the_same_steps_as_one_per_run(model, optimizer):
    steps = 4
    inputs, labels = stacked_batches(steps, seed=7)
    one = train_graph(params(model, optimizer), input_shape=inputs.shape[1:],
                      label_shape=labels.shape[1:])
    loop = train_graph(params(model, optimizer, steps_per_run=steps, train_steps=1000),
                       input_shape=inputs.shape, label_shape=labels.shape)
    one_session, loop_session, start = sessions_from_one_start(one, loop)

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


# The quantile head. Q differs from BATCH, N_INPUTS and N_OUTPUTS.
QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)
OFF_MEDIAN = (0.2, 0.4, 0.7)  # no 0.5: predicted interpolates between 0.4 and 0.7
WITH_MSIS = (0.025, 0.1, 0.5, 0.9, 0.975)


def pinball_mean(labels, quantiles, levels):
    difference = labels[..., None] - quantiles
    taus = np.asarray(levels)
    return np.mean(np.maximum(taus * difference, (taus - 1) * difference))


def expected_predicted(quantiles, levels):
    if levels == OFF_MEDIAN:  # q0.4 + (0.5 - 0.4) / (0.7 - 0.4) * (q0.7 - q0.4)
        return quantiles[..., 1] + (0.5 - 0.4) / (0.7 - 0.4) * (quantiles[..., 2] - quantiles[..., 1])
    return quantiles[..., levels.index(0.5)]


@pytest.mark.parametrize("levels", [QUANTILES, OFF_MEDIAN])
@pytest.mark.parametrize("model", NETWORKS)
def test_quantile_predictions_never_cross(model, levels):
    for scaling in ("none", "window_zscore"):
        graph, spec, inputs, _ = build(MODES.PREDICT, model, scale=100.0, head="quantile",
                                       quantiles=levels, scaling=scaling)
        assert spec.loss is None and spec.train_op is None and not spec.eval_metric_ops
        keys = {"predicted", "quantiles", "quantile_levels"}
        assert set(spec.predictions) == keys
        assert set(spec.export_outputs["serving_default"].outputs) == keys
        with graph.as_default(), tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            predictions = session.run(spec.predictions)
        quantiles = predictions["quantiles"]
        assert quantiles.shape == (BATCH, N_OUTPUTS, len(levels)), scaling
        assert np.all(np.isfinite(quantiles)), scaling
        steps = np.diff(quantiles, axis=-1)
        assert np.all(steps >= 0), f"{scaling}: quantiles cross"
        if scaling == "window_zscore":
            # Strictly apart. (Without scaling, outputs of 100s can tie them in float32: see below.)
            assert np.all(steps > 0), scaling
        np.testing.assert_array_equal(predictions["quantile_levels"],
                                      np.tile(np.float32(levels), (BATCH, 1)))
        np.testing.assert_allclose(predictions["predicted"], expected_predicted(quantiles, levels),
                                   rtol=1e-6, atol=1e-4)
        if 0.5 in levels:
            np.testing.assert_array_equal(predictions["predicted"], quantiles[..., levels.index(0.5)])


def test_quantiles_never_cross_on_large_unscaled_inputs():
    """Outputs of 100s, unscaled: a softplus step far below their float32 spacing rounds away,
    so neighbours may tie, but a lower level is never above a higher one."""
    graph, spec, _, _ = build(MODES.PREDICT, "linear", scale=100.0, head="quantile",
                              quantiles=QUANTILES)
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        quantiles = session.run(spec.predictions["quantiles"])
    assert np.abs(quantiles).max() > 100  # large enough to tie some
    assert np.all(np.diff(quantiles, axis=-1) >= 0), "quantiles cross"


@pytest.mark.parametrize("scaling", ["none", "window_zscore"])
def test_quantile_loss_is_the_mean_pinball_loss_of_the_scaled_values(scaling):
    graph, spec, inputs, labels = build(MODES.TRAIN, "dnn", head="quantile", quantiles=QUANTILES,
                                        scaling=scaling)
    assert spec.train_op is not None and not spec.eval_metric_ops
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        loss, quantiles = session.run([spec.loss, spec.predictions["quantiles"]])
        losses = [session.run([spec.loss, spec.train_op])[0] for _ in range(20)]
    if scaling == "none":
        expected = pinball_mean(labels, quantiles, QUANTILES)
    else:  # the labels and the quantiles scaled by each window's inputs' mean and std
        mean, std = inputs.mean(axis=1, keepdims=True), inputs.std(axis=1, keepdims=True)
        expected = pinball_mean((labels - mean) / std, (quantiles - mean[..., None]) / std[..., None],
                                QUANTILES)
    assert loss == pytest.approx(expected, rel=1e-5)
    assert losses[0] == pytest.approx(loss, rel=1e-6)
    assert losses[-1] < losses[0]  # training on the fixed batch lowers it


def test_quantile_eval_mode_has_the_interval_metrics():
    graph, spec, inputs, labels = build(MODES.EVAL, "linear", head="quantile", quantiles=WITH_MSIS)
    assert spec.train_op is None
    assert set(spec.eval_metric_ops) == set(metric_names(WITH_MSIS, n_inputs=N_INPUTS, season=1))
    assert {"wql", "coverage_95", "msis", "naive_msis", "seasonal_naive_width_80"} <= set(
        spec.eval_metric_ops)
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        session.run(tf.compat.v1.local_variables_initializer())
        session.run([update for _, update in spec.eval_metric_ops.values()])
        metrics = session.run({k: value for k, (value, _) in spec.eval_metric_ops.items()})
        predictions, loss = session.run([spec.predictions, spec.loss])
    expected = compute_metrics(actual=labels, forecast=predictions["predicted"], inputs=inputs, season=1,
                               mase_scale=None, quantiles=predictions["quantiles"], levels=WITH_MSIS)
    assert set(expected) == set(metrics)
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    # The loss, the mean pinball loss, is wql * mean|a| / 2.
    assert loss == pytest.approx(pinball_mean(labels, predictions["quantiles"], WITH_MSIS), rel=1e-5)
    assert loss == pytest.approx(metrics["wql"] * np.mean(np.abs(labels)) / 2, rel=1e-4)


def test_mae_head_loss_is_the_mean_absolute_error():
    graph, spec, inputs, labels = build(MODES.EVAL, "linear", head="mae")
    assert set(spec.predictions) == {"predicted"}
    assert set(spec.eval_metric_ops) == set(metric_names())  # no interval metric
    with graph.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        session.run(tf.compat.v1.local_variables_initializer())
        session.run([update for _, update in spec.eval_metric_ops.values()])
        predicted, loss, mae = session.run([spec.predictions["predicted"], spec.loss,
                                            spec.eval_metric_ops["mae"][0]])
    assert loss == pytest.approx(np.mean(np.abs(predicted - labels)), rel=1e-5)
    assert mae == pytest.approx(loss, rel=1e-5)
    train_graph_, train_spec, _, _ = build(MODES.TRAIN, "linear", head="mae")
    with train_graph_.as_default(), tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        losses = [session.run([train_spec.loss, train_spec.train_op])[0] for _ in range(20)]
    assert losses[-1] < losses[0]


def test_several_steps_per_run_with_the_quantile_head():
    steps, train_steps = 3, 6
    inputs, labels = stacked_batches(steps, seed=11)
    quantile = dict(head="quantile", quantiles=QUANTILES)
    one = train_graph(params("linear", "adam", **quantile), input_shape=inputs.shape[1:],
                      label_shape=labels.shape[1:])
    loop = train_graph(params("linear", "adam", steps_per_run=steps, train_steps=train_steps,
                              **quantile), input_shape=inputs.shape, label_shape=labels.shape)
    one_session, loop_session, start = sessions_from_one_start(one, loop)
    _, one_spec, one_inputs, one_labels = one
    losses = [one_session.run([one_spec.loss, one_spec.train_op],
                              {one_inputs: inputs[step % steps], one_labels: labels[step % steps]})[0]
              for step in range(train_steps)]  # the 3 batches twice, one step per run
    _, loop_spec, loop_inputs, loop_labels = loop
    with loop[0].as_default():
        global_step = tf.compat.v1.train.get_global_step().read_value()
    run_losses, steps_after_run = [], []
    for _ in range(3):  # the third run is past train_steps: no step
        run_losses.append(loop_session.run([loop_spec.loss, loop_spec.train_op],
                                           {loop_inputs: inputs, loop_labels: labels})[0])
        steps_after_run.append(loop_session.run(global_step))
    assert steps_after_run == [3, 6, 6]
    assert run_losses[:2] == pytest.approx([np.mean(losses[:3]), np.mean(losses[3:])], rel=1e-5)
    after_one, after_loop = variable_values(one_session), variable_values(loop_session)
    assert after_one["global_step"] == after_loop["global_step"] == train_steps
    for name, value in after_one.items():
        assert not np.array_equal(value, start[name]), f"{name} did not change"
        np.testing.assert_allclose(after_loop[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


# The linear networks have no hidden layer to drop.
NO_DROPOUT = ("linear", "dlinear", "nlinear")


@pytest.mark.parametrize("model", [name for name in NETWORKS if name not in NO_DROPOUT])
def test_dropout_applies_while_training_only(model):
    from trainer.model.networks import build_network

    inputs = np.random.default_rng(0).normal(size=(BATCH, N_INPUTS)).astype(np.float32)
    outputs = {}
    for training in (True, False):
        with tf.Graph().as_default():
            tf.compat.v1.set_random_seed(3)
            # 16 units: with a few, every ReLU can be dead and no mask would change anything.
            output = build_network(tf.constant(inputs), model=model, hidden_units=16,
                                   n_outputs=N_OUTPUTS, dropout=0.5, training=training)
            dropped = [op.name for op in tf.compat.v1.get_default_graph().get_operations()
                       if "dropout" in op.name.lower() and op.type == "RandomUniform"]
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                outputs[training] = [session.run(output) for _ in range(2)]
        assert bool(dropped) == training, (training, dropped)
    assert not np.allclose(*outputs[True]), "dropout drew the same mask twice"
    np.testing.assert_array_equal(*outputs[False])  # serving: no dropout, the same every time
