"""trainer.model.scaling: every scheme scales and unscales exactly, in model_fn and through a SavedModel."""

import json

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.model_fn import model_fn
from trainer.model.scaling import SCHEMES, resolve_statistics, scale_inputs, unscale
from trainer.model.serving import make_serving_input_receiver_fn
from trainer.model.spec import ModelSpec
from trainer.training.config import make_config
from trainer.training.run_dir import check_resume_compatible
from trainer.util.errors import ConfigError

BATCH, N_INPUTS, N_OUTPUTS = 5, 7, 3
MEAN, STD = 40.0, 8.0


def numpy_state(inputs: np.ndarray, scheme: str):
    """The (shift, scale) each scheme should use, computed by hand with numpy."""
    ones = np.ones((len(inputs), 1))
    if scheme == "none":
        return 0 * ones, ones
    if scheme == "global_zscore":
        return MEAN * ones, STD * ones
    if scheme == "last_value":
        return inputs[:, -1:], ones
    return inputs.mean(axis=1, keepdims=True), inputs.std(axis=1, keepdims=True)


def sample_inputs(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = rng.uniform(20, 60, size=(BATCH, 1))
    return (level + rng.normal(scale=3.0, size=(BATCH, N_INPUTS))).astype(np.float32)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_scale_then_unscale_round_trips(scheme):
    inputs = sample_inputs()
    scaled, state = scale_inputs(tf.constant(inputs), scheme=scheme, mean=MEAN, std=STD)
    shift, scale = numpy_state(inputs.astype(np.float64), scheme)
    np.testing.assert_allclose(scaled.numpy(), (inputs - shift) / scale, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(unscale(scaled, state).numpy(), inputs, rtol=1e-5)


def test_window_zscore_leaves_a_flat_window_unscaled():
    flat = tf.constant([[5.0, 5.0, 5.0]])
    scaled, state = scale_inputs(flat, scheme="window_zscore")
    assert scaled.numpy().tolist() == [[0.0, 0.0, 0.0]]
    assert unscale(tf.constant([[0.5]]), state).numpy().tolist() == [[5.5]]


def linear_spec(**scaling) -> ModelSpec:
    return ModelSpec(model="linear", hidden_units=4, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS,
                     head="mse", optimizer="sgd", learning_rate=0.01, clip_gradient_norm=1.0,
                     season=1, **scaling)


def train_and_export(tmp_path, scheme: str) -> str:
    """A linear model trained 5 steps on level-40 data with `scheme`, exported; returns its path."""
    params = linear_spec(scaling=scheme, scale_mean=MEAN, scale_std=STD)
    rng = np.random.default_rng(1)
    rows = (40 + rng.normal(scale=3.0, size=(64, N_INPUTS + N_OUTPUTS))).astype(np.float32)

    def input_fn():
        data = tf.data.Dataset.from_tensor_slices(({"rawdata": rows[:, :N_INPUTS]}, rows[:, N_INPUTS:]))
        return data.repeat().batch(16)

    estimator = tf.estimator.Estimator(model_fn=model_fn, model_dir=str(tmp_path / scheme),
                                       params=params)
    estimator.train(input_fn, max_steps=5)
    exported = estimator.export_saved_model(str(tmp_path / scheme / "export"),
                                            make_serving_input_receiver_fn(n_inputs=N_INPUTS))
    return exported.decode() if isinstance(exported, bytes) else exported


@pytest.mark.parametrize("scheme", SCHEMES)
def test_saved_model_takes_and_returns_original_units(tmp_path, scheme):
    path = train_and_export(tmp_path, scheme)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    inputs = sample_inputs(seed=3)
    predicted = serve(rawdata=tf.constant(inputs))["predicted"].numpy()
    # The same forecast by hand: scale with numpy, apply the trained linear layer, unscale.
    kernel = tf.train.load_variable(path + "/variables/variables", "linear/output/kernel")
    bias = tf.train.load_variable(path + "/variables/variables", "linear/output/bias")
    shift, scale = numpy_state(inputs.astype(np.float64), scheme)
    expected = (((inputs - shift) / scale) @ kernel + bias) * scale + shift
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-3)
    if scheme in ("last_value", "window_zscore"):
        # Per-window schemes: moving a window by +100 moves its forecast by +100.
        moved = serve(rawdata=tf.constant(inputs + 100.0))["predicted"].numpy()
        np.testing.assert_allclose(moved, predicted + 100.0, atol=1e-3)
    if scheme == "window_zscore":
        stretched = serve(rawdata=tf.constant(inputs * 3.0))["predicted"].numpy()
        np.testing.assert_allclose(stretched, predicted * 3.0, rtol=1e-4, atol=1e-3)


def test_loss_is_on_the_scaled_targets():
    inputs = sample_inputs()
    labels = (inputs[:, -N_OUTPUTS:] + 1.0).astype(np.float32)
    params = linear_spec(scaling="window_zscore")
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.train.create_global_step()
        spec = model_fn({"rawdata": tf.constant(inputs)}, tf.constant(labels),
                        tf.estimator.ModeKeys.EVAL, params)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            loss, predicted = session.run([spec.loss, spec.predictions["predicted"]])
    shift, scale = numpy_state(inputs.astype(np.float64), "window_zscore")
    expected = np.mean(((labels - shift) / scale - (predicted - shift) / scale) ** 2)
    assert loss == pytest.approx(expected, rel=1e-3)
    assert loss != pytest.approx(np.mean((labels - predicted) ** 2), rel=1e-2)


def test_statistics_come_from_prepare_json(tmp_path):
    stats = tmp_path / "prepare.json"
    stats.write_text(json.dumps({"statistics": {"mean": 12.5, "std": 2.0,
                                                "in_sample_naive_mae": {"1": 0.5, "7": 1.5}}}))
    resolved = resolve_statistics(scaling="global_zscore", stats_file=str(stats), scale_mean=0.0,
                                  scale_std=0.0, season=7)
    assert resolved == {"scale_mean": 12.5, "scale_std": 2.0, "mase_scale": 1.5,
                        "rmsse_scale": None}  # an older prepare.json: RMSSE from the windows
    stats.write_text(json.dumps({"statistics": {"mean": 12.5, "std": 2.0, "in_sample_naive_mse": 0.75,
                                                "in_sample_naive_mae": {"1": 0.5, "7": 1.5}}}))
    assert resolve_statistics(scaling="none", stats_file=str(stats), scale_mean=0.0, scale_std=0.0,
                              season=7)["rmsse_scale"] == 0.75
    with pytest.raises(ConfigError, match=r"seasons 1, 7, not for --season 12; rerun forecast prepare "
                                          r"with --season 12"):
        resolve_statistics(scaling="none", stats_file=str(stats), scale_mean=0, scale_std=0, season=12)
    # A season the user did not type (evaluate's, from the model) is named as such.
    from trainer.data.prepared import mase_scale

    with pytest.raises(ConfigError, match=r"not for season 52 \(the model's, from its training run\); "
                                          r"pass --season 7 to score with the season of the data"):
        mase_scale(json.loads(stats.read_text()), season=52, source=str(stats),
                   season_source="the model's, from its training run")
    assert resolve_statistics(scaling="global_zscore", stats_file="", scale_mean=3.0, scale_std=4.0,
                              season=1) == {"scale_mean": 3.0, "scale_std": 4.0, "mase_scale": None,
                                            "rmsse_scale": None}


def test_global_zscore_needs_statistics():
    with pytest.raises(ConfigError, match="--scaling global_zscore needs the training statistics"):
        make_config(scaling="global_zscore")
    with pytest.raises(ConfigError, match="either --stats_file or --scale_mean/--scale_std"):
        make_config(scaling="global_zscore", stats_file="p.json", scale_std=2.0)
    with pytest.raises(ConfigError, match="--season 30 is longer than --n_inputs 20"):
        make_config(season=30)


def test_scaling_is_checked_on_resume_and_old_configs_mean_none():
    saved = make_config().to_dict()
    del saved["scaling"]  # a config.json written before --scaling existed
    check_resume_compatible(make_config(scaling="none"), saved, where="old_run")
    # Today's default is another: such a run resumes with --scaling none, and says so otherwise.
    with pytest.raises(ConfigError, match=r"scaling: saved 'none', now 'window_zscore'"):
        check_resume_compatible(make_config(), saved, where="old_run")
