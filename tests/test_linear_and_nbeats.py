"""DLinear, NLinear and N-BEATS: their shapes, DLinear's decomposition against numpy, NLinear's
shift equivariance and N-BEATS' dropout (tests/test_networks.py trains and exports them)."""

from typing import Dict, Optional

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.networks import (
    DLINEAR_KERNEL_SIZE,
    NBEATS_BLOCKS,
    NBEATS_LAYERS,
    build_network,
    moving_average_decomposition,
)

# Distinct sizes, so that a swapped dimension cannot pass by coincidence.
BATCH, N_INPUTS, N_OUTPUTS, WIDTH, HIDDEN = 5, 30, 7, 3, 11
CHANNELS, CONTEXT = 3, 4  # the target and two covariate channels; 4 context numbers
MODELS = ("dlinear", "nlinear", "nbeats")


def run_network(model: str, sequence: np.ndarray, context: Optional[np.ndarray] = None, *,
                runs: int = 1, feeds=(), **options) -> Dict[str, list]:
    """Build `model` in a fresh graph on placeholders; its outputs for `sequence` (`runs`
    times) and for each sequence of `feeds`, with the same variables; and the variable shapes."""
    with tf.Graph().as_default() as graph:
        tf.compat.v1.set_random_seed(7)
        inputs = tf.compat.v1.placeholder(tf.float32, [None, *sequence.shape[1:]])
        output = build_network(inputs, None if context is None else tf.constant(context),
                               model=model, hidden_units=HIDDEN, n_outputs=N_OUTPUTS,
                               width=WIDTH, **options)
        shapes = {v.name: v.shape.as_list() for v in graph.get_collection("trainable_variables")}
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            outputs = [session.run(output, {inputs: sequence}) for _ in range(runs)]
            fed = [session.run(output, {inputs: values}) for values in feeds]
    return {"outputs": outputs, "fed": fed, "shapes": shapes}


def random(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("covariates", [False, True])
def test_output_is_batch_by_outputs_by_width(model, covariates):
    sequence = random(BATCH, N_INPUTS, CHANNELS if covariates else 1)
    context = random(BATCH, CONTEXT, seed=1) if covariates else None
    result = run_network(model, sequence, context)
    (output,) = result["outputs"]
    assert output.shape == (BATCH, N_OUTPUTS, WIDTH)
    assert np.all(np.isfinite(output))
    if model != "nbeats":  # the linear ones map the covariates with weights of their own
        assert (f"{model}/covariates/kernel:0" in result["shapes"]) == covariates


def numpy_decomposition(values: np.ndarray, kernel_size: int):
    half = (kernel_size - 1) // 2
    padded = np.concatenate([np.repeat(values[:, :1], half, axis=1), values,
                             np.repeat(values[:, -1:], half, axis=1)], axis=1)
    trend = np.stack([padded[:, i:i + kernel_size].mean(axis=1) for i in range(values.shape[1])],
                     axis=1)
    return trend, values - trend


@pytest.mark.parametrize("kernel_size", [DLINEAR_KERNEL_SIZE, 5, 1, N_INPUTS - 1])
def test_dlinear_decomposition_is_the_edge_padded_moving_average(kernel_size):
    values = np.cumsum(random(BATCH, N_INPUTS), axis=1)  # a random walk: a trend to find
    trend, remainder = moving_average_decomposition(tf.constant(values), kernel_size=kernel_size)
    expected_trend, expected_remainder = numpy_decomposition(values, kernel_size)
    assert trend.shape == remainder.shape == (BATCH, N_INPUTS)
    np.testing.assert_allclose(trend.numpy(), expected_trend, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(remainder.numpy(), expected_remainder, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(trend.numpy() + remainder.numpy(), values, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("kernel_size", [4, 0, N_INPUTS + 1])
def test_dlinear_decomposition_wants_an_odd_kernel_within_the_inputs(kernel_size):
    with pytest.raises(ValueError, match=f"kernel_size {kernel_size} must be odd and in"):
        moving_average_decomposition(tf.zeros([BATCH, N_INPUTS]), kernel_size=kernel_size)


def test_dlinear_maps_trend_and_remainder_each_to_every_output_unit():
    shapes = run_network("dlinear", random(BATCH, N_INPUTS, 1))["shapes"]
    assert shapes == {"dlinear/trend/kernel:0": [N_INPUTS, N_OUTPUTS * WIDTH],
                      "dlinear/trend/bias:0": [N_OUTPUTS * WIDTH],
                      "dlinear/remainder/kernel:0": [N_INPUTS, N_OUTPUTS * WIDTH],
                      "dlinear/remainder/bias:0": [N_OUTPUTS * WIDTH]}


@pytest.mark.parametrize("n_inputs", [24, 3, 1])
def test_dlinear_builds_on_fewer_inputs_than_its_kernel(n_inputs):
    (output,) = run_network("dlinear", random(BATCH, n_inputs, 1))["outputs"]
    assert output.shape == (BATCH, N_OUTPUTS, WIDTH)


def test_nlinear_is_shift_equivariant():
    sequence = random(BATCH, N_INPUTS, 1)
    shift = np.float32(4.5)
    result = run_network("nlinear", sequence, feeds=[sequence + shift])
    (output,), (shifted,) = result["outputs"], result["fed"]
    np.testing.assert_allclose(shifted - output, np.full_like(output, shift), rtol=1e-5, atol=1e-4)
    assert not np.allclose(output, output[:, :1, :1])  # and not a constant forecast


def test_nbeats_has_its_blocks_of_four_layers_with_backcast_and_forecast():
    shapes = run_network("nbeats", random(BATCH, N_INPUTS, CHANNELS),
                         random(BATCH, CONTEXT, seed=1))["shapes"]
    kernels = {name: shape for name, shape in shapes.items() if name.endswith("kernel:0")}
    assert len(kernels) == NBEATS_BLOCKS * (NBEATS_LAYERS + 2)
    joined = N_INPUTS + N_INPUTS * (CHANNELS - 1) + CONTEXT  # residual, covariates, context
    for block in range(1, NBEATS_BLOCKS + 1):
        assert kernels[f"nbeats/block{block}_hidden1/kernel:0"] == [joined, HIDDEN]
        assert kernels[f"nbeats/block{block}_hidden{NBEATS_LAYERS}/kernel:0"] == [HIDDEN, HIDDEN]
        assert kernels[f"nbeats/block{block}_backcast/kernel:0"] == [HIDDEN, N_INPUTS]
        assert kernels[f"nbeats/block{block}_forecast/kernel:0"] == [HIDDEN, N_OUTPUTS * WIDTH]


def test_nbeats_dropout_draws_a_new_mask_each_training_run_and_none_otherwise():
    sequence = random(BATCH, N_INPUTS, 1)
    training = run_network("nbeats", sequence, runs=2, dropout=0.5, training=True)["outputs"]
    serving = run_network("nbeats", sequence, runs=2, dropout=0.5, training=False)["outputs"]
    assert not np.allclose(*training)
    np.testing.assert_array_equal(*serving)
