"""The custom estimator's model_fn: one forecast, then loss, train op, metrics and exports per mode.

`model_fn(features, labels, mode, params)` computes the predictions once and hands them to
`make_estimator_spec`, which (like the canned estimators' heads) builds the six parts of the
EstimatorSpec: mode, predictions `{"predicted": ...}`, export outputs, loss (mean squared
error), train op and eval metrics (rmse, mae and naive_rmse, the RMSE of repeating the last
input value, so that every evaluation states the model's skill). In PREDICT mode no loss,
train op or metric is built; the train op exists only in TRAIN and the metrics only in EVAL.
"""

from typing import Any, Dict, Optional

import tensorflow as tf

from trainer.inputs import FEATURE_KEY
from trainer.models import forecast

PREDICTIONS_KEY = "predicted"

OPTIMIZERS = {
    "sgd": tf.compat.v1.train.GradientDescentOptimizer,
    "adam": tf.compat.v1.train.AdamOptimizer,
    "adagrad": tf.compat.v1.train.AdagradOptimizer,
    "rmsprop": tf.compat.v1.train.RMSPropOptimizer,
}


def naive_forecast(rawdata: tf.Tensor, *, n_outputs: int) -> tf.Tensor:
    """The last input value repeated over the horizon: [batch, n_inputs] -> [batch, n_outputs].

    >>> naive_forecast(tf.constant([[1., 2., 3.]]), n_outputs=2).numpy().tolist()
    [[3.0, 3.0]]
    """
    return tf.tile(rawdata[:, -1:], [1, n_outputs])


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
                        clip_gradient_norm: float) -> tf.estimator.EstimatorSpec:
    """The EstimatorSpec for `mode` built from the forecast [batch, n_outputs]."""
    predictions_dict = {PREDICTIONS_KEY: predictions}
    export_outputs = {
        tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
            tf.estimator.export.PredictOutput(predictions_dict),
    }
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode=mode, predictions=predictions_dict,
                                          export_outputs=export_outputs)

    labels = tf.cast(labels, tf.float32)
    loss = tf.compat.v1.losses.mean_squared_error(labels, predictions)
    train_op = None
    eval_metric_ops = None
    if mode == tf.estimator.ModeKeys.TRAIN:
        train_op = make_train_op(loss, optimizer=optimizer, learning_rate=learning_rate,
                                 clip_gradient_norm=clip_gradient_norm)
    else:
        naive = naive_forecast(rawdata, n_outputs=predictions.shape[-1])
        eval_metric_ops = {
            "rmse": tf.compat.v1.metrics.root_mean_squared_error(labels, predictions),
            "mae": tf.compat.v1.metrics.mean_absolute_error(labels, predictions),
            "naive_rmse": tf.compat.v1.metrics.root_mean_squared_error(labels, naive),
        }
    return tf.estimator.EstimatorSpec(
        mode=mode, predictions=predictions_dict, export_outputs=export_outputs, loss=loss,
        train_op=train_op, eval_metric_ops=eval_metric_ops)


def model_fn(features: Dict[str, tf.Tensor], labels: Optional[tf.Tensor], mode: str,
             params: Dict[str, Any]) -> tf.estimator.EstimatorSpec:
    """Estimator model_fn. `params`: model, hidden_units, n_outputs, optimizer, learning_rate,
    clip_gradient_norm (see `trainer.config.TrainerConfig`)."""
    rawdata = features[FEATURE_KEY]
    predictions = forecast(rawdata, model=params["model"], hidden_units=params["hidden_units"],
                           n_outputs=params["n_outputs"])
    return make_estimator_spec(
        mode=mode, predictions=predictions, labels=labels, rawdata=rawdata,
        optimizer=params["optimizer"], learning_rate=params["learning_rate"],
        clip_gradient_norm=params["clip_gradient_norm"])
