"""trainer.model.heads: the quantile levels, the registry, head.json and the quantile head's output."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.export_assets import head_json
from trainer.model.heads import (
    DEFAULT_QUANTILES,
    HEADS,
    AbsoluteErrorHead,
    PointHead,
    QuantileHead,
    check_quantiles,
    get_head,
    parse_quantiles,
)
from trainer.model.spec import ModelSpec

# Deliberately different sizes: batch, forecast steps and quantiles.
BATCH, N_OUTPUTS = 7, 4


def softplus(x):
    return np.logaddexp(0.0, x)


def expected_output(raw, anchor):
    """The head's construction in numpy (float64): the anchor level as it is, each level above it
    the one below plus the softplus of its difference with the anchor, each level below it the
    one above minus that."""
    out = np.empty_like(raw)
    out[..., anchor] = raw[..., anchor]
    relative = raw - raw[..., anchor:anchor + 1]
    for i in range(anchor + 1, raw.shape[-1]):
        out[..., i] = out[..., i - 1] + softplus(relative[..., i])
    for i in range(anchor - 1, -1, -1):
        out[..., i] = out[..., i + 1] - softplus(relative[..., i])
    return out


def test_parse_quantiles_reads_comma_separated_levels():
    assert parse_quantiles("0.1, 0.5,0.9") == (0.1, 0.5, 0.9)
    assert parse_quantiles("0.25") == (0.25,)
    assert check_quantiles(np.array([0.2, 0.8])) == (0.2, 0.8)
    assert all(type(level) is float for level in check_quantiles(np.array([0.2, 0.8])))


@pytest.mark.parametrize("text, message", [
    ("0.5,0.1", "quantile levels 0.5,0.1 must be strictly increasing, e.g. 0.1,0.5,0.9"),
    ("0.1,0.5,0.5", "quantile levels 0.1,0.5,0.5 must be strictly increasing"),
    ("0,0.5", "quantile level 0 is not between 0 and 1 (exclusive)"),
    ("0.5,1", "quantile level 1 is not between 0 and 1 (exclusive)"),
    ("-0.1,0.5", "quantile level -0.1 is not between 0 and 1"),
    ("0.5,1.5", "quantile level 1.5 is not between 0 and 1"),
    ("", "give at least one quantile level, e.g. 0.1,0.5,0.9"),
    (" , ", "quantile levels ' , ' have an empty entry"),
    ("0.1,,0.5", "quantile levels '0.1,,0.5' have an empty entry; give e.g. 0.1,0.5,0.9"),
    ("0.1,0.5,", "have an empty entry"),
    ("0.1,half", "quantile levels '0.1,half' are not comma-separated numbers; give e.g. 0.1,0.5,0.9"),
])
def test_bad_quantile_levels_are_refused_naming_the_value(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_quantiles(text)


@pytest.mark.parametrize("levels, message", [
    ((0.9, 0.1), "quantile levels 0.9,0.1 must be strictly increasing"),
    ((0.3, 0.3), "quantile levels 0.3,0.3 must be strictly increasing"),
    ((0.0,), "quantile level 0 is not between 0 and 1"),
    ((0.5, 1.0), "quantile level 1 is not between 0 and 1"),
    ((), "give at least one quantile level"),
])
def test_check_quantiles_and_the_quantile_head_refuse_bad_levels(levels, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_quantiles(levels)
    with pytest.raises(ValueError, match=re.escape(message)):
        QuantileHead(levels)


def test_levels_for_a_point_head_are_refused():
    with pytest.raises(ValueError, match=r"quantile levels \(0.1, 0.9\) need the quantile head, not 'mse'"):
        get_head("mse", (0.1, 0.9))
    with pytest.raises(ValueError, match="must be strictly increasing"):
        ModelSpec(model="lstm", hidden_units=4, n_inputs=5, n_outputs=2, head="quantile",
                  quantiles=(0.5, 0.1), optimizer="sgd", learning_rate=0.1,
                  clip_gradient_norm=5.0, scaling="none", season=1)


def test_get_head_by_name():
    assert set(HEADS) == {"mse", "mae", "quantile"}
    assert type(get_head("mse")) is PointHead and get_head("mse").width == 1
    assert type(get_head("mae")) is AbsoluteErrorHead and get_head("mae").levels == ()
    default = get_head("quantile")
    assert type(default) is QuantileHead
    assert default.levels == DEFAULT_QUANTILES == (0.1, 0.5, 0.9) and default.width == 3
    chosen = get_head("quantile", (0.2, 0.4, 0.7))
    assert chosen.levels == (0.2, 0.4, 0.7) and chosen.width == 3
    with pytest.raises(ValueError, match=re.escape(
            "unknown head 'pinball'; expected one of ['mae', 'mse', 'quantile']")):
        get_head("pinball")


@pytest.mark.parametrize("head, expected", [
    (PointHead(), {"loss": "mse", "quantiles": [],
                   "predicted": "the forecast that minimises the mean squared error (the mean)"}),
    (AbsoluteErrorHead(), {"loss": "mae", "quantiles": [], "predicted":
                           "the forecast that minimises the mean absolute error (the median)"}),
    (QuantileHead((0.1, 0.5, 0.9)), {"loss": "quantile", "quantiles": [0.1, 0.5, 0.9],
                                     "predicted": "the 0.5 quantile"}),
    (QuantileHead((0.2, 0.4, 0.7)), {"loss": "quantile", "quantiles": [0.2, 0.4, 0.7], "predicted":
                                     "the 0.5 quantile interpolated between the 0.4 and 0.7 quantiles"}),
    (QuantileHead((0.6, 0.8)), {"loss": "quantile", "quantiles": [0.6, 0.8], "predicted":
                                "the 0.6 quantile, the level nearest 0.5 (the levels do not surround 0.5)"}),
])
def test_head_json_round_trips(head, expected):
    text = head_json(head.describe())
    assert text.endswith("\n")
    assert json.loads(text) == expected == head.describe()


def test_model_spec_refuses_quantile_levels_without_the_quantile_head():
    common = dict(model="lstm", hidden_units=4, n_inputs=5, n_outputs=2, optimizer="sgd",
                  learning_rate=0.1, clip_gradient_norm=0.0, scaling="none", season=1)
    for head in ("mse", "mae"):
        with pytest.raises(ValueError, match=re.escape(
                f"quantile levels (0.5,) need the quantile head, got head '{head}'")):
            ModelSpec(head=head, quantiles=(0.5,), **common)
    with pytest.raises(ValueError, match=re.escape("unknown head 'pinball'")):
        ModelSpec(head="pinball", **common)
    assert ModelSpec(head="quantile", quantiles=(0.1, 0.9), **common).quantiles == (0.1, 0.9)


@pytest.mark.parametrize("levels, anchor", [
    ((0.05, 0.1, 0.5, 0.9, 0.95), 2),
    ((0.2, 0.4, 0.7), 1),  # 0.4 is nearest 0.5
    ((0.6, 0.75, 0.8, 0.99), 0),  # all above 0.5: only steps up
    ((0.01, 0.3), 1),  # all below: only steps down
])
def test_quantile_output_follows_its_construction_and_never_crosses(levels, anchor):
    head = QuantileHead(levels)
    rng = np.random.default_rng(len(levels))
    raw = rng.uniform(-50.0, 50.0, size=(BATCH, N_OUTPUTS, len(levels)))
    raw[0, 0] = 50.0  # the most extreme numbers of all, both ways
    raw[0, 1] = -50.0
    raw[1, 0, :] = np.where(np.arange(len(levels)) == anchor, 50.0, -50.0)  # a far anchor, flat steps
    output = head.output(tf.constant(raw, tf.float32)).numpy()
    assert output.shape == (BATCH, N_OUTPUTS, len(levels))
    assert np.all(np.isfinite(output))
    assert np.all(np.diff(output, axis=-1) >= 0), "quantiles cross"
    np.testing.assert_array_equal(output[..., anchor], raw[..., anchor].astype(np.float32))
    np.testing.assert_allclose(head.output(tf.constant(raw)).numpy(), expected_output(raw, anchor),
                               rtol=1e-12, atol=1e-12)
    # On moderate numbers every level lies strictly above the one below.
    moderate = head.output(tf.constant(rng.normal(size=(BATCH, N_OUTPUTS, len(levels))),
                                       tf.float32)).numpy()
    assert np.all(np.diff(moderate, axis=-1) > 0)


@pytest.mark.parametrize("levels, predicted", [
    ((0.1, 0.5, 0.9), lambda q: q[..., 1]),
    ((0.2, 0.4, 0.7), lambda q: q[..., 1] + (0.5 - 0.4) / (0.7 - 0.4) * (q[..., 2] - q[..., 1])),
    ((0.4, 0.6), lambda q: (q[..., 0] + q[..., 1]) / 2),
    ((0.6, 0.8), lambda q: q[..., 0]),  # the level nearest 0.5
    ((0.1, 0.3), lambda q: q[..., 1]),
])
def test_quantile_predictions(levels, predicted):
    head = QuantileHead(levels)
    rng = np.random.default_rng(3)
    output = head.output(tf.constant(rng.normal(size=(BATCH, N_OUTPUTS, len(levels))), tf.float64))
    predictions = {key: value.numpy() for key, value in head.predictions(output).items()}
    assert set(predictions) == {"predicted", "quantiles", "quantile_levels"}
    quantiles = output.numpy()
    np.testing.assert_array_equal(predictions["quantiles"], quantiles)
    np.testing.assert_allclose(predictions["predicted"], predicted(quantiles), rtol=1e-12)
    assert predictions["predicted"].shape == (BATCH, N_OUTPUTS)
    np.testing.assert_array_equal(predictions["quantile_levels"], np.tile(levels, (BATCH, 1)))
    np.testing.assert_array_equal(head.point_forecast(output).numpy(), predictions["predicted"])
    assert head.quantiles(output) is output
    assert PointHead().quantiles(output) is None


def test_pinball_loss_of_the_quantile_head_and_its_collection():
    levels = (0.1, 0.5, 0.9)
    head = QuantileHead(levels)
    rng = np.random.default_rng(5)
    labels = rng.normal(size=(BATCH, N_OUTPUTS))
    output = np.sort(rng.normal(size=(BATCH, N_OUTPUTS, 3)), axis=-1)
    difference = labels[..., None] - output
    taus = np.array(levels)
    expected = np.mean(np.maximum(taus * difference, (taus - 1) * difference))
    loss = head.loss(labels=tf.constant(labels), output=tf.constant(output), loss_collection=None)
    assert float(loss) == pytest.approx(expected, rel=1e-12)

    graph = tf.Graph()
    with graph.as_default():
        kept = head.loss(labels=tf.constant(labels), output=tf.constant(output))
        assert graph.get_collection(tf.compat.v1.GraphKeys.LOSSES) == [kept]
        head.loss(labels=tf.constant(labels), output=tf.constant(output), loss_collection=None)
        assert graph.get_collection(tf.compat.v1.GraphKeys.LOSSES) == [kept]  # the second kept out


def test_point_heads_losses():
    rng = np.random.default_rng(6)
    labels, output = rng.normal(size=(BATCH, N_OUTPUTS)), rng.normal(size=(BATCH, N_OUTPUTS, 1))
    mse = PointHead().loss(labels=tf.constant(labels), output=tf.constant(output), loss_collection=None)
    mae = AbsoluteErrorHead().loss(labels=tf.constant(labels), output=tf.constant(output),
                                   loss_collection=None)
    # tf.compat.v1.losses computes in float32.
    assert float(mse) == pytest.approx(np.mean((output[..., 0] - labels) ** 2), rel=1e-6)
    assert float(mae) == pytest.approx(np.mean(np.abs(output[..., 0] - labels)), rel=1e-6)


def test_adding_one_value_to_every_unit_shifts_the_quantiles_and_keeps_their_widths():
    head = QuantileHead((0.05, 0.25, 0.5, 0.75, 0.95))
    raw = np.random.default_rng(4).normal(size=(BATCH, N_OUTPUTS, 5)).astype(np.float32)
    level = np.float32(250.0)
    shifted = head.output(tf.constant(raw + level)).numpy()
    np.testing.assert_allclose(shifted - level, head.output(tf.constant(raw)).numpy(), atol=1e-3)
