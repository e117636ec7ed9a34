"""Heads: what the loss decides, from the width of the network's output to the serving outputs.

A head owns, for one kind of forecast:

- `width`, the values per forecast step the network must output: the network's output is
  [batch, n_outputs, width] (`trainer.model.networks.build_network`);
- `loss`, from that output and the targets, both in the network's (scaled) units;
- `point_forecast`, the one value per step the metrics and the baselines compare;
- `predictions`, the dict of tensors the model predicts (in the series' units), and
  `export_outputs`, the serving signature built from it.

Like the canned estimators' heads and neuralforecast's losses, a new head (quantiles, say)
is one class and one `HEADS` entry; no network changes. `PointHead` (the paper's mean squared
error, predictions `{"predicted": [batch, n_outputs]}`) is the first and the default.
"""

import abc
from typing import Dict, Optional

import tensorflow as tf

PREDICTIONS_KEY = "predicted"  # the point forecast in every head's predictions and signature


class Head(abc.ABC):
    """The loss, the output width, the predictions and the export outputs of one kind of forecast."""

    #: Values the network outputs per forecast step.
    width: int = 1

    @abc.abstractmethod
    def point_forecast(self, output: tf.Tensor) -> tf.Tensor:
        """Network output [batch, n_outputs, width] -> one value per step [batch, n_outputs]."""

    @abc.abstractmethod
    def loss(self, *, labels: tf.Tensor, output: tf.Tensor,
             loss_collection: Optional[str] = tf.compat.v1.GraphKeys.LOSSES) -> tf.Tensor:
        """The training loss (a scalar) of `output` [batch, n_outputs, width] against `labels`
        [batch, n_outputs], both in the same units. `loss_collection=None` keeps it out of the
        LOSSES collection (for a loss inside a training loop)."""

    @abc.abstractmethod
    def predictions(self, output: tf.Tensor) -> Dict[str, tf.Tensor]:
        """The model's predictions, from its output in the series' units."""

    def export_outputs(self, predictions: Dict[str, tf.Tensor]
                       ) -> Dict[str, tf.estimator.export.ExportOutput]:
        """The serving signature: every prediction, under `serving_default`."""
        return {tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
                tf.estimator.export.PredictOutput(predictions)}


class PointHead(Head):
    """One value per step, trained with the mean squared error (the paper's).

    >>> head = PointHead()
    >>> output = tf.constant([[[1.0], [3.0]]])  # [batch 1, n_outputs 2, width 1]
    >>> float(head.loss(labels=tf.constant([[2.0, 3.0]]), output=output, loss_collection=None))
    0.5
    >>> head.predictions(output)["predicted"].numpy().tolist()
    [[1.0, 3.0]]
    """

    width = 1

    def point_forecast(self, output: tf.Tensor) -> tf.Tensor:
        return output[:, :, 0]

    def loss(self, *, labels: tf.Tensor, output: tf.Tensor,
             loss_collection: Optional[str] = tf.compat.v1.GraphKeys.LOSSES) -> tf.Tensor:
        return tf.compat.v1.losses.mean_squared_error(labels, self.point_forecast(output),
                                                      loss_collection=loss_collection)

    def predictions(self, output: tf.Tensor) -> Dict[str, tf.Tensor]:
        return {PREDICTIONS_KEY: self.point_forecast(output)}


# The one registry of heads, by the name of their loss.
HEADS: Dict[str, Head] = {"mse": PointHead()}
DEFAULT_HEAD = "mse"  # the paper's


def get_head(name: str) -> Head:
    """The head registered as `name`."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    return HEADS[name]
