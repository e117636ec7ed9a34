"""Every network of the registry, as a user meets it: exported as a SavedModel with covariates
and with quantiles, loaded and called; and trained on a signal the naive forecasts cannot follow
(the sum of two seasons), which it must learn. A network added to `NETWORKS` is covered here
without a line of its own."""

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import tensorflow as tf

from trainer.data.covariates import Covariate
from trainer.data.schema import (
    CATEGORIES_KEY,
    FEATURE_KEY,
    FUTURE_CATEGORIES_KEY,
    FUTURE_KEY,
    PAST_KEY,
    STATIC_KEY,
)
from trainer.model.export_assets import ExportAssets, write_export_assets
from trainer.model.heads import get_head
from trainer.model.metrics import compute_metrics
from trainer.model.model_fn import model_fn
from trainer.model.networks import NETWORKS
from trainer.model.serving import load_exported_model, make_serving_input_receiver_fn
from trainer.model.spec import ModelSpec

# Distinct sizes, so that a swapped dimension cannot pass by coincidence.
N_INPUTS, N_OUTPUTS, BATCH = 24, 6, 8
COVARIATES = (Covariate("p", "past", mean=1.0, std=2.0),
              Covariate("f", "future"),
              Covariate("fc", "future", vocabulary=("x", "y", "z")),
              Covariate("s", "static"),
              Covariate("c", "static", vocabulary=("a", "b")))
LEVELS = (0.1, 0.5, 0.9)


def covariate_features(rng: np.random.Generator, rows: int) -> Dict[str, np.ndarray]:
    """Random inputs for every kind of `COVARIATES`, by their feature keys."""
    return {PAST_KEY: rng.normal(size=(rows, N_INPUTS, 1)).astype(np.float32),
            FUTURE_KEY: rng.normal(size=(rows, N_INPUTS + N_OUTPUTS, 1)).astype(np.float32),
            FUTURE_CATEGORIES_KEY: rng.integers(0, 3, size=(rows, N_INPUTS + N_OUTPUTS, 1)),
            STATIC_KEY: rng.normal(size=(rows, 1)).astype(np.float32),
            CATEGORIES_KEY: rng.integers(0, 2, size=(rows, 1))}


def spec_of(model: str, **more) -> ModelSpec:
    values = dict(model=model, hidden_units=16, n_inputs=N_INPUTS, n_outputs=N_OUTPUTS, head="mse",
                  optimizer="adam", learning_rate=0.01, clip_gradient_norm=5.0,
                  scaling="window_zscore", season=1)
    values.update(more)
    return ModelSpec(**values)


def export(tmp_path: Path, spec: ModelSpec, features: Dict[str, np.ndarray], labels: np.ndarray,
           *, steps: int) -> str:
    """Train `steps` steps on the arrays with the Estimator and export a SavedModel; its path."""
    def input_fn():
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        return dataset.repeat().shuffle(1000, seed=0).batch(BATCH)

    estimator = tf.estimator.Estimator(
        model_fn=model_fn, params=spec, model_dir=str(tmp_path / "model"),
        config=tf.estimator.RunConfig(tf_random_seed=1, save_checkpoints_steps=steps,
                                      log_step_count_steps=None))
    estimator.train(input_fn, max_steps=steps)
    receiver = make_serving_input_receiver_fn(n_inputs=spec.n_inputs, n_outputs=spec.n_outputs,
                                              covariates=spec.covariates)
    # The assets the trainer's exporters add (trainer.training.experiment.make_exporters).
    assets = write_export_assets(str(tmp_path), ExportAssets(
        head=get_head(spec.head, spec.quantiles).describe(), covariates=spec.covariates))
    return estimator.export_saved_model(str(tmp_path / "export"), receiver,
                                        assets_extra=assets).decode()


@pytest.mark.parametrize("model", NETWORKS)
def test_savedmodel_round_trip_with_covariates_and_quantiles(tmp_path, model):
    rng = np.random.default_rng(0)
    rows = 64
    inputs = rng.normal(size=(rows, N_INPUTS)).astype(np.float32)
    features = {FEATURE_KEY: inputs, **covariate_features(rng, rows)}
    labels = rng.normal(size=(rows, N_OUTPUTS)).astype(np.float32)
    spec = spec_of(model, covariates=COVARIATES, head="quantile", quantiles=LEVELS)
    path = export(tmp_path, spec, features, labels, steps=3)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    signature = serve.structured_input_signature[1]
    assert {name: tensor.shape.as_list() for name, tensor in signature.items()} == {
        FEATURE_KEY: [None, N_INPUTS], PAST_KEY: [None, N_INPUTS, 1],
        FUTURE_KEY: [None, N_INPUTS + N_OUTPUTS, 1],
        FUTURE_CATEGORIES_KEY: [None, N_INPUTS + N_OUTPUTS, 1], STATIC_KEY: [None, 1],
        CATEGORIES_KEY: [None, 1]}
    batch = {name: tf.constant(value[:5], dtype=signature[name].dtype)
             for name, value in features.items()}
    outputs = serve(**batch)
    quantiles = outputs["quantiles"].numpy()
    assert quantiles.shape == (5, N_OUTPUTS, len(LEVELS))
    assert outputs["predicted"].shape == (5, N_OUTPUTS)
    assert np.all(np.isfinite(quantiles)) and np.all(np.diff(quantiles, axis=-1) >= 0)
    np.testing.assert_array_equal(outputs["predicted"].numpy(), quantiles[..., 1])
    # The covariates reach the forecast: other covariate values, another forecast.
    changed = dict(batch, **{PAST_KEY: batch[PAST_KEY] + 3.0, STATIC_KEY: batch[STATIC_KEY] - 3.0})
    assert not np.allclose(serve(**changed)["predicted"].numpy(), outputs["predicted"].numpy())
    # ... and the package's own loader calls it the same way.
    loaded = load_exported_model(path)
    assert (loaded.n_inputs, loaded.n_outputs) == (N_INPUTS, N_OUTPUTS)
    again = loaded.forecast(inputs[:5], {k: v[:5] for k, v in features.items() if k != FEATURE_KEY})
    np.testing.assert_allclose(again["predicted"], outputs["predicted"].numpy(), rtol=1e-5)


def two_seasons(rows: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Windows of a sum of two seasons (periods 5 and 8, random phases and amplitudes) plus a
    little noise: the last value and the last season are both poor forecasts of it."""
    rng = np.random.default_rng(seed)
    steps = np.arange(N_INPUTS + N_OUTPUTS)
    values = (rng.uniform(0.5, 1.5, (rows, 1)) * np.sin(2 * np.pi * steps / 5
                                                          + rng.uniform(0, 7, (rows, 1)))
              + rng.uniform(0.5, 1.5, (rows, 1)) * np.sin(2 * np.pi * steps / 8
                                                            + rng.uniform(0, 7, (rows, 1)))
              + rng.normal(0, 0.05, (rows, len(steps))))
    values = values.astype(np.float32)
    return values[:, :N_INPUTS], values[:, N_INPUTS:]


# Steps each network needs on the two seasons (the recurrent ones learn slower per step).
TRAIN_STEPS = {"lstm": 1500, "lstm2": 1500, "gru": 1500}
DEFAULT_TRAIN_STEPS = 800


@pytest.mark.e2e
@pytest.mark.parametrize("model", NETWORKS)
def test_every_network_learns_a_sum_of_two_seasons(tmp_path, model):
    train_inputs, train_labels = two_seasons(4000, seed=1)
    test_inputs, test_labels = two_seasons(500, seed=2)
    spec = spec_of(model, hidden_units=32)
    path = export(tmp_path, spec, {FEATURE_KEY: train_inputs}, train_labels,
                  steps=TRAIN_STEPS.get(model, DEFAULT_TRAIN_STEPS))
    forecast = load_exported_model(path).predict(test_inputs)
    metrics = compute_metrics(actual=test_labels, forecast=forecast, inputs=test_inputs, season=8,
                              mase_scale=None)
    # Both baselines miss the other season; the model must not.
    best_baseline = min(metrics["naive_rmse"], metrics["seasonal_naive_rmse"])
    assert metrics["rmse"] < 0.5 * best_baseline, (model, metrics["rmse"], best_baseline)


def parametrized_models(test) -> List[str]:
    """The models a test function runs for: its `@pytest.mark.parametrize("model", ...)`."""
    (mark,) = [mark for mark in test.pytestmark if mark.name == "parametrize"]
    names, values = mark.args
    assert names == "model", (test.__name__, names)
    return list(values)


def test_the_tests_above_cover_every_network():
    """Each test above runs once per network of the registry, in its order, and every network
    trains its own steps or the default: TRAIN_STEPS names no network the registry lacks (a
    renamed network would fall back to the default without a word)."""
    for test in (test_savedmodel_round_trip_with_covariates_and_quantiles,
                 test_every_network_learns_a_sum_of_two_seasons):
        assert parametrized_models(test) == list(NETWORKS), test.__name__
    assert set(TRAIN_STEPS) <= set(NETWORKS), sorted(set(TRAIN_STEPS) - set(NETWORKS))
    assert len(NETWORKS) >= 6
