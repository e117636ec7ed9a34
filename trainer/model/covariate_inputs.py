"""What a network reads: the scaled target and the covariates, as a sequence and a context.

Every network (`trainer.model.networks`) takes two tensors:

- `sequence` [batch, n_inputs, channels]: per input step, the scaled target, then the past
  covariates, then the future covariates of that step (channels = 1 without covariates);
- `context` [batch, width] or None: what is not per input step, the future covariates of the
  horizon's steps (flattened), the static numbers, and an embedding of each static category.

A past or future category is embedded per step and joins the sequence (and the horizon's
context) like a number.

The recurrent and convolutional networks run over `sequence` and join `context` to what they
make of it before their output layer; the dense and linear ones read both flattened. Numeric
covariates are scaled here, inside the graph, by the training split's mean and std from
prepare.json (`trainer.data.covariates`), so the SavedModel takes them in their own units.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

from trainer.data.covariates import Covariate
from trainer.data.schema import (
    CATEGORIES_KEY,
    FUTURE_CATEGORIES_KEY,
    FUTURE_KEY,
    PAST_CATEGORIES_KEY,
    PAST_KEY,
    STATIC_KEY,
)
from trainer.util.lazy import tf

MAX_EMBEDDING_SIZE = 16


def embedding_size(vocabulary_size: int) -> int:
    """A small embedding: about the square root of the vocabulary, 2 to 16 values."""
    return min(MAX_EMBEDDING_SIZE, max(2, math.ceil(math.sqrt(vocabulary_size))))


def _scaled(values: tf.Tensor, covariates: Sequence[Covariate]) -> tf.Tensor:
    mean = tf.constant([c.mean for c in covariates], tf.float32)
    std = tf.constant([c.std for c in covariates], tf.float32)
    return (values - mean) / std


def _embedded(ids: tf.Tensor, covariate: Covariate, *, name: str) -> tf.Tensor:
    """Vocabulary ids (any shape) -> their embeddings [..., size]; an id outside the vocabulary
    is clipped to it (the tools check ids before they reach the model)."""
    size = len(covariate.vocabulary)
    table = tf.compat.v1.get_variable(name, [size, embedding_size(size)],
                                      initializer=tf.compat.v1.random_normal_initializer(stddev=0.1))
    return tf.nn.embedding_lookup(table, tf.clip_by_value(ids, 0, size - 1))


def of_kind(covariates: Sequence[Covariate], kind: str, *, categorical: bool = False
            ) -> Tuple[Covariate, ...]:
    return tuple(c for c in covariates if c.kind == kind and c.categorical == categorical)


def network_inputs(scaled_inputs: tf.Tensor, features: Dict[str, tf.Tensor],
                   covariates: Sequence[Covariate], *, n_inputs: int
                   ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
    """(sequence, context) from the scaled target inputs [batch, n_inputs] and the features."""
    channels = [scaled_inputs[:, :, None]]
    context = []
    past, future = of_kind(covariates, "past"), of_kind(covariates, "future")
    static, categories = of_kind(covariates, "static"), of_kind(covariates, "static",
                                                                categorical=True)
    future_steps = []  # [batch, n_inputs + n_outputs, k] parts: numbers, then embeddings
    if past:
        channels.append(_scaled(features[PAST_KEY], past))
    for position, covariate in enumerate(of_kind(covariates, "past", categorical=True)):
        channels.append(_embedded(features[PAST_CATEGORIES_KEY][:, :, position], covariate,
                                  name=f"past_embedding_{position}"))
    if future:
        future_steps.append(_scaled(features[FUTURE_KEY], future))
    for position, covariate in enumerate(of_kind(covariates, "future", categorical=True)):
        future_steps.append(_embedded(features[FUTURE_CATEGORIES_KEY][:, :, position], covariate,
                                      name=f"future_embedding_{position}"))
    if future_steps:
        steps = tf.concat(future_steps, axis=-1) if len(future_steps) > 1 else future_steps[0]
        channels.append(steps[:, :n_inputs, :])
        horizon = steps[:, n_inputs:, :]
        context.append(tf.reshape(horizon, [-1, horizon.shape[1] * horizon.shape[2]]))
    if static:
        context.append(_scaled(features[STATIC_KEY], static))
    for position, covariate in enumerate(categories):
        context.append(_embedded(features[CATEGORIES_KEY][:, position], covariate,
                                 name=f"embedding_{position}"))
    sequence = channels[0] if len(channels) == 1 else tf.concat(channels, axis=-1)
    return sequence, (tf.concat(context, axis=-1) if context else None)
