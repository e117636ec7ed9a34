"""Optimizers and learning-rate schedules: the rate at each step, and the rate a step applies."""

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer.model.optimizers import make_train_op, scheduled_learning_rate
from trainer.training.config import parse_config


@pytest.mark.parametrize("warmup", [0, 10])
def test_cosine_schedule_with_warmup_against_its_formula(warmup):
    total, rate = 100, 0.2
    for step in (0, 5, 9, 10, 30, 55, 99, 100, 150):
        got = float(scheduled_learning_rate(step, learning_rate=rate, schedule="cosine",
                                            warmup_steps=warmup, train_steps=total))
        progress = min(max((step - warmup) / (total - warmup), 0.0), 1.0)
        expected = rate * 0.5 * (1 + math.cos(math.pi * progress))
        if warmup:
            expected *= min(1.0, (step + 1) / warmup)
        assert got == pytest.approx(expected, rel=1e-6, abs=1e-9), step
    assert scheduled_learning_rate(7, learning_rate=rate, schedule="constant") == rate  # a float


def test_a_training_step_applies_the_scheduled_rate():
    """SGD on loss = w: each step moves w by minus the rate of that step."""
    with tf.Graph().as_default():
        step = tf.compat.v1.train.create_global_step()
        weight = tf.compat.v1.get_variable("w", [], initializer=tf.compat.v1.zeros_initializer())
        train_op = make_train_op(weight * 1.0, optimizer="sgd", learning_rate=0.4,
                                 clip_gradient_norm=0.0, schedule="constant", warmup_steps=4)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            values = []
            for _ in range(6):
                session.run(train_op)
                values.append(session.run(weight))
            assert session.run(step) == 6
    moves = -np.diff([0.0, *values])
    np.testing.assert_allclose(moves, [0.1, 0.2, 0.3, 0.4, 0.4, 0.4], rtol=1e-6)


def test_warmup_longer_than_a_cosine_run_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--lr_schedule", "cosine", "--warmup_steps", "600", "--train_steps", "600"])
    assert exit_info.value.code == 2
    assert "--warmup_steps 600 leaves no step of the cosine schedule" in capsys.readouterr().err
