"""The custom estimator's model_fn: one forecast, then loss, train op, metrics and exports per mode.

`model_fn(features, labels, mode, params)` computes the predictions once and hands them to
`make_estimator_spec`, which (like the canned estimators' heads) builds the six parts of the
EstimatorSpec: mode, predictions `{"predicted": ...}`, export outputs, loss (mean squared
error), train op and eval metrics (rmse, mae, mape, smape, mase, and the same for the naive
and seasonal naive forecasts, from `trainer.forecast_metrics`, so that every evaluation states
the model's skill). In PREDICT mode no loss, train op or metric is built; the train op exists
only in TRAIN and the metrics only in EVAL.

With `--scaling` (see `trainer.scaling`) the network sees scaled inputs and its forecast is
unscaled in the graph, so predictions, metrics and the SavedModel are in the original units;
the loss is the mean squared error of the scaled forecast against the targets scaled the same
way, so that its size does not depend on the series' units.
"""

from typing import Any, Dict, Optional

import tensorflow as tf

from trainer import scaling
from trainer.forecast_metrics import metric_ops, naive_forecast
from trainer.inputs import FEATURE_KEY
from trainer.models import forecast

__all__ = ["model_fn", "make_estimator_spec", "make_train_op", "naive_forecast"]

PREDICTIONS_KEY = "predicted"

OPTIMIZERS = {
    "sgd": tf.compat.v1.train.GradientDescentOptimizer,
    "adam": tf.compat.v1.train.AdamOptimizer,
    "adagrad": tf.compat.v1.train.AdagradOptimizer,
    "rmsprop": tf.compat.v1.train.RMSPropOptimizer,
}


def make_train_op(loss: tf.Tensor, *, optimizer: str, learning_rate: float,
                  clip_gradient_norm: float) -> tf.Operation:
    """Minimise `loss` with the named optimizer, clipping the global gradient norm if > 0."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
    opt = OPTIMIZERS[optimizer](learning_rate=learning_rate)
    grads_and_vars = opt.compute_gradients(loss)
    if clip_gradient_norm > 0:
        gradients, variables = zip(*grads_and_vars)
        gradients, _ = tf.clip_by_global_norm(gradients, clip_gradient_norm)
        grads_and_vars = list(zip(gradients, variables))
    return opt.apply_gradients(grads_and_vars, global_step=tf.compat.v1.train.get_global_step())


def make_estimator_spec(*, mode: str, predictions: tf.Tensor, labels: Optional[tf.Tensor],
                        rawdata: tf.Tensor, optimizer: str, learning_rate: float,
                        clip_gradient_norm: float, scaled_predictions: Optional[tf.Tensor] = None,
                        scale_state: Optional[scaling.ScaleState] = None, season: int = 1,
                        mase_scale: Optional[float] = None) -> tf.estimator.EstimatorSpec:
    """The EstimatorSpec for `mode` built from the forecast [batch, n_outputs].

    With scaling, `scaled_predictions` is the network's output before unscaling and
    `scale_state` the map applied to the inputs: the loss compares them with the scaled labels.
    """
    predictions_dict = {PREDICTIONS_KEY: predictions}
    export_outputs = {
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
            tf.estimator.export.PredictOutput(predictions_dict),
    }
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode=mode, predictions=predictions_dict,
                                          export_outputs=export_outputs)

    labels = tf.cast(labels, tf.float32)
    if scale_state is None:
        loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    else:
        loss = tf.compat.v1.losses.mean_squared_error(scaling.scale(labels, scale_state),
                                                      scaled_predictions)
    train_op = None
    eval_metric_ops = None
    if mode == tf.estimator.ModeKeys.TRAIN:
        train_op = make_train_op(loss, optimizer=optimizer, learning_rate=learning_rate,
                                 clip_gradient_norm=clip_gradient_norm)
    else:
        eval_metric_ops = metric_ops(actual=labels, forecast=predictions, inputs=rawdata,
                                     season=season, mase_scale=mase_scale)
    return tf.estimator.EstimatorSpec(
        mode=mode, predictions=predictions_dict, export_outputs=export_outputs, loss=loss,
        train_op=train_op, eval_metric_ops=eval_metric_ops)


def model_fn(features: Dict[str, tf.Tensor], labels: Optional[tf.Tensor], mode: str,
             params: Dict[str, Any]) -> tf.estimator.EstimatorSpec:
    """Estimator model_fn. `params`: model, hidden_units, n_outputs, optimizer, learning_rate,
    clip_gradient_norm (see `trainer.config.TrainerConfig`); optionally scaling, scale_mean,
    scale_std, season and mase_scale (see `trainer.scaling.resolve_statistics`)."""
    rawdata = features[FEATURE_KEY]
    scaled_inputs, scale_state = scaling.scale_inputs(
        rawdata, scheme=params.get("scaling", "none"), mean=params.get("scale_mean", 0.0),
        std=params.get("scale_std", 1.0))
    scaled_predictions = forecast(scaled_inputs, model=params["model"],
                                  hidden_units=params["hidden_units"], n_outputs=params["n_outputs"])
    predictions = scaling.unscale(scaled_predictions, scale_state)
    return make_estimator_spec(
        mode=mode, predictions=predictions, labels=labels, rawdata=rawdata,
        optimizer=params["optimizer"], learning_rate=params["learning_rate"],
        clip_gradient_norm=params["clip_gradient_norm"], scaled_predictions=scaled_predictions,
        scale_state=scale_state, season=params.get("season", 1),
        mase_scale=params.get("mase_scale"))
