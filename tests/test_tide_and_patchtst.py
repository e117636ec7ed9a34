"""TiDE and PatchTST beyond what tests/test_networks.py checks of every network: their shapes with
and without covariates, PatchTST's patches against numpy, TiDE's global linear residual, and
dropout only while training."""

from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.networks import build_network, patch_sizes, patches

# Distinct sizes, so that a swapped dimension cannot pass by coincidence.
BATCH, N_INPUTS, N_OUTPUTS, WIDTH, CHANNELS, CONTEXT, HIDDEN = 5, 40, 7, 3, 4, 11, 12
MODELS = ("tide", "patchtst")


def arrays(*, n_inputs: int = N_INPUTS, channels: int = CHANNELS, context: int = CONTEXT,
           seed: int = 0) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """A random sequence [BATCH, n_inputs, channels] and context [BATCH, context] (None at 0)."""
    rng = np.random.default_rng(seed)
    sequence = rng.normal(size=(BATCH, n_inputs, channels)).astype(np.float32)
    return sequence, (rng.normal(size=(BATCH, context)).astype(np.float32) if context else None)


def run(model: str, sequence: np.ndarray, context: Optional[np.ndarray], *, runs: int = 1,
        training: bool = False, dropout: float = 0.0, zeroed: Tuple[str, ...] = ()
        ) -> Tuple[List[np.ndarray], Dict[str, np.ndarray]]:
    """The network's output `runs` times in one session, and its variables' values by name
    (those whose name contains one of `zeroed` set to zero first)."""
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(3)
        output = build_network(tf.constant(sequence),
                               None if context is None else tf.constant(context), model=model,
                               hidden_units=HIDDEN, n_outputs=N_OUTPUTS, width=WIDTH,
                               dropout=dropout, training=training)
        variables = tf.compat.v1.global_variables()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for variable in variables:
                if any(part in variable.name for part in zeroed):
                    variable.load(np.zeros(variable.shape.as_list(), np.float32), session)
            outputs = [session.run(output) for _ in range(runs)]
            values = dict(zip((v.name for v in variables), session.run(variables)))
    return outputs, values


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("channels, context", [(1, 0), (CHANNELS, CONTEXT), (1, CONTEXT)])
def test_output_shape_with_and_without_covariates(model, channels, context):
    sequence, context_values = arrays(channels=channels, context=context)
    (output,), _ = run(model, sequence, context_values)
    assert output.shape == (BATCH, N_OUTPUTS, WIDTH)
    assert np.all(np.isfinite(output))


@pytest.mark.parametrize("model", MODELS)
def test_covariates_and_context_change_the_forecast(model):
    sequence, context = arrays()
    (output,), _ = run(model, sequence, context)
    covariates_moved = sequence.copy()
    covariates_moved[:, :, 1:] += 1.0
    (other_covariates,), _ = run(model, covariates_moved, context)
    (other_context,), _ = run(model, sequence, context + 1.0)
    assert not np.allclose(other_covariates, output)
    assert not np.allclose(other_context, output)


@pytest.mark.parametrize("n_inputs", [1, 6])
def test_patchtst_builds_on_fewer_inputs_than_a_patch(n_inputs):
    (output,), values = run("patchtst", *arrays(n_inputs=n_inputs, channels=1, context=0))
    assert output.shape == (BATCH, N_OUTPUTS, WIDTH)
    assert values["patchtst/position_embedding:0"].shape == (2, HIDDEN)  # the input and its padding


def numpy_patches(values: np.ndarray, *, length: int, stride: int) -> np.ndarray:
    padded = np.concatenate([values, np.repeat(values[:, -1:], stride, axis=1)], axis=1)
    starts = range(0, padded.shape[1] - length + 1, stride)
    return np.stack([padded[:, start:start + length] for start in starts], axis=1)


@pytest.mark.parametrize("n_inputs", [37, 40, 12])
def test_patches_match_numpy(n_inputs):
    values = np.random.default_rng(1).normal(size=(BATCH, n_inputs)).astype(np.float32)
    length, stride = patch_sizes(n_inputs)
    expected = numpy_patches(values, length=length, stride=stride)
    got = patches(tf.constant(values), length=length, stride=stride).numpy()
    np.testing.assert_array_equal(got, expected)
    assert got.shape[1] == (n_inputs - length) // stride + 2
    # The last patch reaches the last input (its end in the padding when the stride does not
    # divide the inputs, as with 37: what padding is left past a whole patch is dropped).
    last_start = (got.shape[1] - 1) * stride
    assert last_start + length >= n_inputs
    np.testing.assert_array_equal(got[:, -1, n_inputs - 1 - last_start], values[:, -1])


def test_patch_sizes_are_the_papers_cut_to_the_inputs():
    assert patch_sizes(336) == (16, 8)
    assert patch_sizes(12) == (12, 8)
    assert patch_sizes(5) == (5, 5)


def test_patchtst_variables_position_embedding_and_heads():
    _, values = run("patchtst", *arrays())
    assert values["patchtst/position_embedding:0"].shape == (5, HIDDEN)  # (40 - 16) // 8 + 2 patches
    assert values["patchtst/patch_embedding/kernel:0"].shape == (16, HIDDEN)
    # 12 divides by 4: 4 heads of 3 values each.
    assert values["patchtst/layer2_attention/query/kernel:0"].shape == (HIDDEN, 4, HIDDEN // 4)
    assert values["patchtst/output/kernel:0"].shape == (5 * HIDDEN, N_OUTPUTS * WIDTH)
    assert values["patchtst/covariates/kernel:0"].shape == (N_INPUTS * (CHANNELS - 1) + CONTEXT,
                                                            N_OUTPUTS * WIDTH)


def test_tide_output_is_the_global_linear_residual_when_the_decoder_is_zeroed():
    sequence, context = arrays()
    (output,), values = run("tide", sequence, context, zeroed=("decoder1_output", "decoder1_skip"))
    kernel, bias = values["tide/global_residual/kernel:0"], values["tide/global_residual/bias:0"]
    assert kernel.shape == (N_INPUTS, N_OUTPUTS * WIDTH)
    linear = sequence[:, :, 0] @ kernel + bias
    np.testing.assert_allclose(output.reshape(BATCH, -1), linear, rtol=1e-5, atol=1e-5)
    # The feature projection maps each step's 3 covariates to 4 values, all 40 steps flattened.
    assert values["tide/feature_projection_output/kernel:0"].shape == (HIDDEN, 4)
    assert values["tide/encoder1_hidden/kernel:0"].shape == (N_INPUTS + N_INPUTS * 4 + CONTEXT, HIDDEN)


@pytest.mark.parametrize("model", MODELS)
def test_dropout_while_training_only(model):
    sequence, context = arrays()
    serving, _ = run(model, sequence, context, runs=2, dropout=0.5)
    np.testing.assert_array_equal(*serving)
    training, _ = run(model, sequence, context, runs=2, dropout=0.5, training=True)
    assert not np.allclose(*training), "dropout drew the same mask twice"
