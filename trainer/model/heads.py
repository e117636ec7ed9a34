"""Heads: what the loss decides, from the width of the network's output to the serving outputs.

A head owns, for one kind of forecast:

- `width`, the values per forecast step the network must output: the network's output is
  [batch, n_outputs, width] (`trainer.model.networks.build_network`);
- `output`, its last step on those numbers (the identity, or the ordering of quantiles);
- `loss`, from that output and the targets, both in the network's (scaled) units;
- `point_forecast`, the one value per step the metrics and the baselines compare, and
  `quantiles`, the forecast's quantiles [batch, n_outputs, Q] (None for a point forecast);
- `predictions`, the dict of tensors the model predicts (in the series' units), and
  `export_outputs`, the serving signature built from it.

Like the canned estimators' heads and neuralforecast's losses, a new head is one class and one
`HEADS` entry; no network changes (`--loss` picks one):

| `--loss` | trained with | predictions |
|---|---|---|
| `mse` (default, the paper's) | mean squared error | `predicted` [batch, n_outputs] |
| `mae` | mean absolute error (its best forecast is the median) | `predicted` |
| `quantile` | pinball loss at each of `--quantiles` | `predicted`, `quantiles`, `quantile_levels` |

`quantiles` is [batch, n_outputs, Q] and `quantile_levels` [batch, Q], the levels repeated.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from trainer.model.metrics import pinball_terms
from trainer.util.lazy import tf

PREDICTIONS_KEY = "predicted"  # the point forecast in every head's predictions and signature
QUANTILES_KEY = "quantiles"  # [batch, n_outputs, Q] in a quantile head's predictions
QUANTILE_LEVELS_KEY = "quantile_levels"  # [batch, Q]: the levels, beside every forecast
# tf.compat.v1.GraphKeys.LOSSES, spelled out: a default argument would import TensorFlow with
# this module, which the flags of every command read (trainer.util.lazy)
LOSSES_COLLECTION = "losses"
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)  # an 80% interval around the median


class Head(abc.ABC):
    """The loss, the output width, the predictions and the export outputs of one kind of forecast."""

    #: Values the network outputs per forecast step.
    width: int = 1
    #: The `--loss` name of the head.
    name: str = ""
    #: Quantile levels (sorted, in (0, 1)); empty for a point forecast.
    levels: Tuple[float, ...] = ()

    def output(self, raw: tf.Tensor) -> tf.Tensor:
        """The network's numbers [batch, n_outputs, width] -> the head's output (the identity)."""
        return raw

    def quantiles(self, output: tf.Tensor) -> Optional[tf.Tensor]:
        """The forecast's quantiles [batch, n_outputs, Q], or None for a point forecast."""
        return None

    def describe(self) -> Dict[str, Any]:
        """What head.json holds (`trainer.model.export_assets`): the loss, the levels and what
        `predicted` is."""
        return {"loss": self.name, "quantiles": list(self.levels),
                "predicted": self.predicted_note}

    predicted_note: str = ""

    @abc.abstractmethod
    def point_forecast(self, output: tf.Tensor) -> tf.Tensor:
        """Network output [batch, n_outputs, width] -> one value per step [batch, n_outputs]."""

    @abc.abstractmethod
    def loss(self, *, labels: tf.Tensor, output: tf.Tensor,
             loss_collection: Optional[str] = LOSSES_COLLECTION) -> tf.Tensor:
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
    name = "mse"
    predicted_note = "the forecast that minimises the mean squared error (the mean)"

    def point_forecast(self, output: tf.Tensor) -> tf.Tensor:
        return output[:, :, 0]

    def loss(self, *, labels: tf.Tensor, output: tf.Tensor,
             loss_collection: Optional[str] = LOSSES_COLLECTION) -> tf.Tensor:
        return tf.compat.v1.losses.mean_squared_error(labels, self.point_forecast(output),
                                                      loss_collection=loss_collection)

    def predictions(self, output: tf.Tensor) -> Dict[str, tf.Tensor]:
        return {PREDICTIONS_KEY: self.point_forecast(output)}


class AbsoluteErrorHead(PointHead):
    """One value per step, trained with the mean absolute error: its best forecast is the median,
    which outliers move less than the mean.

    >>> output = tf.constant([[[1.0], [3.0]]])
    >>> float(AbsoluteErrorHead().loss(labels=tf.constant([[2.0, 5.0]]), output=output,
    ...                                loss_collection=None))
    1.5
    """

    name = "mae"
    predicted_note = "the forecast that minimises the mean absolute error (the median)"

    def loss(self, *, labels: tf.Tensor, output: tf.Tensor,
             loss_collection: Optional[str] = LOSSES_COLLECTION) -> tf.Tensor:
        return tf.compat.v1.losses.absolute_difference(labels, self.point_forecast(output),
                                                       loss_collection=loss_collection)


class QuantileHead(Head):
    """Q quantiles per step, trained with the pinball loss averaged over the levels.

    The quantiles never cross, by construction: the network's value at the level nearest 0.5
    is that quantile, and each level above (below) adds (subtracts) to its neighbour's the
    softplus, which is > 0, of its own value minus the anchor's (so adding one value to every
    unit shifts the quantiles and keeps their widths). Scaling multiplies by a positive scale,
    so the order survives unscaling. (In float32 a step far below the spacing of the values
    rounds away, so without scaling, on values in the hundreds, untrained neighbours can tie;
    they still never cross.)
    `predicted` is the 0.5 quantile; without that level, the quantile interpolated linearly
    at 0.5 between the nearest levels on either side (the nearest level when all lie on one).

    >>> head = QuantileHead((0.1, 0.5, 0.9))
    >>> output = head.output(tf.constant([[[-3.0, 2.0, 0.0]]]))  # [batch 1, n_outputs 1, Q 3]
    >>> [round(v, 3) for v in output.numpy()[0, 0].tolist()]  # 2 - softplus(-5), 2, 2 + softplus(-2)
    [1.993, 2.0, 2.127]
    >>> head.point_forecast(output).numpy().tolist()
    [[2.0]]
    """

    name = "quantile"

    def __init__(self, levels: Sequence[float] = DEFAULT_QUANTILES):
        self.levels = check_quantiles(levels)
        self.width = len(self.levels)
        self._anchor = min(range(self.width), key=lambda i: abs(self.levels[i] - 0.5))
        below = [i for i, level in enumerate(self.levels) if level <= 0.5]
        above = [i for i, level in enumerate(self.levels) if level >= 0.5]
        if below and above:
            low, high = below[-1], above[0]
            weight = 0.0 if low == high else (0.5 - self.levels[low]) / (
                self.levels[high] - self.levels[low])
            self._median = (low, high, weight)
            self.predicted_note = (f"the {self.levels[low]:g} quantile" if low == high else
                                   f"the 0.5 quantile interpolated between the {self.levels[low]:g}"
                                   f" and {self.levels[high]:g} quantiles")
        else:
            self._median = (self._anchor, self._anchor, 0.0)
            self.predicted_note = (f"the {self.levels[self._anchor]:g} quantile, the level nearest "
                                   "0.5 (the levels do not surround 0.5)")

    def output(self, raw: tf.Tensor) -> tf.Tensor:
        anchor = raw[:, :, self._anchor:self._anchor + 1]
        # Steps from differences with the anchor: a network that adds the same value to every
        # unit (nlinear's last value, a level) moves every quantile by it and no width.
        relative = raw - anchor
        parts = [anchor]
        if self._anchor + 1 < self.width:
            steps_up = tf.math.softplus(relative[:, :, self._anchor + 1:])
            parts.append(anchor + tf.cumsum(steps_up, axis=-1))
        if self._anchor > 0:
            steps_down = tf.math.softplus(relative[:, :, :self._anchor])
            parts.insert(0, anchor - tf.cumsum(steps_down, axis=-1, reverse=True))
        return tf.concat(parts, axis=-1)

    def quantiles(self, output: tf.Tensor) -> tf.Tensor:
        return output

    def point_forecast(self, output: tf.Tensor) -> tf.Tensor:
        low, high, weight = self._median
        if low == high:
            return output[:, :, low]
        return output[:, :, low] + weight * (output[:, :, high] - output[:, :, low])

    def loss(self, *, labels: tf.Tensor, output: tf.Tensor,
             loss_collection: Optional[str] = LOSSES_COLLECTION) -> tf.Tensor:
        loss = tf.reduce_mean(pinball_terms(labels, output, self.levels))
        if loss_collection is not None:
            tf.compat.v1.losses.add_loss(loss, loss_collection)
        return loss

    def predictions(self, output: tf.Tensor) -> Dict[str, tf.Tensor]:
        levels = tf.constant([list(self.levels)], dtype=output.dtype)
        return {PREDICTIONS_KEY: self.point_forecast(output), QUANTILES_KEY: output,
                QUANTILE_LEVELS_KEY: tf.tile(levels, [tf.shape(output)[0], 1])}


def check_quantiles(levels: Sequence[float]) -> Tuple[float, ...]:
    """Levels as a tuple, checked: at least one, each in (0, 1), strictly increasing."""
    levels = tuple(float(level) for level in levels)
    if not levels:
        raise ValueError("give at least one quantile level, e.g. 0.1,0.5,0.9")
    outside = [level for level in levels if not 0.0 < level < 1.0]
    if outside:
        raise ValueError(f"quantile level {outside[0]:g} is not between 0 and 1 (exclusive)")
    if any(b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"quantile levels {','.join(f'{v:g}' for v in levels)} must be strictly "
                         "increasing, e.g. 0.1,0.5,0.9")
    return levels


def parse_quantiles(text: str) -> Tuple[float, ...]:
    """'0.1,0.5,0.9' -> (0.1, 0.5, 0.9), checked.

    >>> parse_quantiles("0.1, 0.5,0.9")
    (0.1, 0.5, 0.9)
    """
    parts = text.split(",")
    if len(parts) > 1 and not all(part.strip() for part in parts):
        raise ValueError(f"quantile levels {text!r} have an empty entry; give e.g. 0.1,0.5,0.9")
    try:
        levels = [float(part) for part in parts if part.strip()]
    except ValueError:
        raise ValueError(f"quantile levels {text!r} are not comma-separated numbers; give e.g. "
                         "0.1,0.5,0.9") from None
    return check_quantiles(levels)


# The one registry of heads, by `--loss` name: the class, and the note --help shows.
HEADS: Dict[str, Tuple[Callable[..., Head], str]] = {
    "mse": (PointHead, "mean squared error, the paper's"),
    "mae": (AbsoluteErrorHead, "mean absolute error: forecasts the median"),
    "quantile": (QuantileHead, "pinball loss at each of --quantiles; exports the quantiles"),
}
DEFAULT_HEAD = "mse"  # the paper's


def get_head(name: str, quantiles: Sequence[float] = ()) -> Head:
    """The head registered as `name`; `quantiles` are the levels of the quantile head."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    make = HEADS[name][0]
    if make is QuantileHead:
        return make(quantiles or DEFAULT_QUANTILES)
    if quantiles:
        raise ValueError(f"quantile levels {tuple(quantiles)} need the quantile head, not {name!r}")
    return make()
