"""Optimizers, and `OPTIMIZERS`, the one registry of them (`--optimizer`); learning-rate
schedules, and `SCHEDULES` (`--lr_schedule`).

The flag's choices and help text and the benchmark's Keras counterparts are read from here.

A schedule maps the global step to the learning rate: `constant` keeps `--learning_rate`;
`cosine` decays it along half a cosine to 0 at `--train_steps` (Loshchilov and Hutter, SGDR,
arXiv 1608.03983, without restarts). With `--warmup_steps` W > 0 either rises linearly from
lr / W to lr over the first W steps first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Union

from trainer.util.lazy import tf


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One `--optimizer` choice: its TF1 optimizer class (by name, in tf.compat.v1.train: the
    registry loads without TensorFlow) and its Keras twin (for the benchmark)."""

    tf1_class: str
    keras_name: str
    flag_note: str = ""


OPTIMIZERS: Dict[str, Optimizer] = {
    "sgd": Optimizer("GradientDescentOptimizer", "SGD",
                     flag_note="plain gradient descent, as in the paper"),
    "adam": Optimizer("AdamOptimizer", "Adam"),
    "adagrad": Optimizer("AdagradOptimizer", "Adagrad"),
    "rmsprop": Optimizer("RMSPropOptimizer", "RMSprop"),
}
DEFAULT_OPTIMIZER = "sgd"  # the paper's
# What the model search (`forecast auto`) trains with: the accuracy benchmark's shared setting,
# which trained every network there in minutes (docs/accuracy.md).
SEARCH_OPTIMIZER = "adam"

# The one registry of `--lr_schedule` choices, with the note --help shows beside each.
SCHEDULES: Dict[str, str] = {
    "constant": "--learning_rate throughout",
    "cosine": "half a cosine from --learning_rate down to 0 at --train_steps",
}
DEFAULT_SCHEDULE = "constant"  # the paper's


def scheduled_learning_rate(step: Union[tf.Tensor, int], *, learning_rate: float, schedule: str,
                            warmup_steps: int = 0, train_steps: Optional[int] = None
                            ) -> Union[tf.Tensor, float]:
    """The learning rate at global step `step` (a plain float for a constant one).

    >>> rate = scheduled_learning_rate(50, learning_rate=0.1, schedule="cosine", train_steps=100)
    >>> round(float(rate), 6)
    0.05
    >>> round(float(scheduled_learning_rate(4, learning_rate=0.1, schedule="constant",
    ...                                     warmup_steps=10)), 6)
    0.05
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {sorted(SCHEDULES)}")
    if schedule == "constant" and not warmup_steps:
        return learning_rate
    step = tf.cast(step, tf.float64)
    rate = tf.constant(learning_rate, tf.float64)
    if schedule == "cosine":
        if not train_steps or train_steps <= warmup_steps:
            raise ValueError(f"the cosine schedule needs train_steps > warmup_steps "
                             f"({warmup_steps}), got {train_steps}")
        progress = tf.clip_by_value((step - warmup_steps) / (train_steps - warmup_steps), 0.0, 1.0)
        rate = rate * 0.5 * (1.0 + tf.cos(math.pi * progress))
    if warmup_steps:
        rate = rate * tf.minimum(tf.constant(1.0, tf.float64), (step + 1.0) / warmup_steps)
    return tf.cast(rate, tf.float32)


def make_train_op(loss: tf.Tensor, *, optimizer: str, learning_rate: float,
                  clip_gradient_norm: float, schedule: str = DEFAULT_SCHEDULE,
                  warmup_steps: int = 0, train_steps: Optional[int] = None) -> tf.Operation:
    """Minimise `loss` with the named optimizer at the scheduled learning rate, clipping the
    global gradient norm if > 0."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    global_step = tf.compat.v1.train.get_global_step()
    rate = scheduled_learning_rate(global_step.read_value() if global_step is not None else 0,
                                   learning_rate=learning_rate, schedule=schedule,
                                   warmup_steps=warmup_steps, train_steps=train_steps)
    opt = getattr(tf.compat.v1.train, OPTIMIZERS[optimizer].tf1_class)(learning_rate=rate)
    grads_and_vars = opt.compute_gradients(loss)
    if clip_gradient_norm > 0:
        gradients, variables = zip(*grads_and_vars)
        gradients, _ = tf.clip_by_global_norm(gradients, clip_gradient_norm)
        grads_and_vars = list(zip(gradients, variables))
    return opt.apply_gradients(grads_and_vars, global_step=tf.compat.v1.train.get_global_step())
