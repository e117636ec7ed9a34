"""Optimizers, and `OPTIMIZERS`, the one registry of them (`--optimizer`).

The flag's choices and help text and the benchmark's Keras counterparts are read from here.
"""

import dataclasses
from typing import Dict

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One `--optimizer` choice: its TF1 optimizer class and its Keras twin (for the benchmark)."""

    make: type
    keras_name: str
    flag_note: str = ""


OPTIMIZERS: Dict[str, Optimizer] = {
    "sgd": Optimizer(tf.compat.v1.train.GradientDescentOptimizer, "SGD",
                     flag_note="plain gradient descent, as in the paper"),
    "adam": Optimizer(tf.compat.v1.train.AdamOptimizer, "Adam"),
    "adagrad": Optimizer(tf.compat.v1.train.AdagradOptimizer, "Adagrad"),
    "rmsprop": Optimizer(tf.compat.v1.train.RMSPropOptimizer, "RMSprop"),
}
DEFAULT_OPTIMIZER = "sgd"  # the paper's


def make_train_op(loss: tf.Tensor, *, optimizer: str, learning_rate: float,
                  clip_gradient_norm: float) -> tf.Operation:
    """Minimise `loss` with the named optimizer, clipping the global gradient norm if > 0."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    opt = OPTIMIZERS[optimizer].make(learning_rate=learning_rate)
    grads_and_vars = opt.compute_gradients(loss)
    if clip_gradient_norm > 0:
        gradients, variables = zip(*grads_and_vars)
        gradients, _ = tf.clip_by_global_norm(gradients, clip_gradient_norm)
        grads_and_vars = list(zip(gradients, variables))
    return opt.apply_gradients(grads_and_vars, global_step=tf.compat.v1.train.get_global_step())
