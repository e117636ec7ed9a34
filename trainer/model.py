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

With `--steps_per_run` N > 1, TRAIN mode gets N batches at once and `train_several_steps`
takes N ordinary steps in a loop inside the graph: the same updates as N runs of one step,
for one session run (the Estimator's hooks and Python cost about a third of a step otherwise).
"""

from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from trainer import scaling
from trainer.forecast_metrics import metric_ops, naive_forecast
from trainer.inputs import FEATURE_KEY
from trainer.models import forecast

__all__ = ["model_fn", "make_estimator_spec", "make_train_op", "naive_forecast", "train_several_steps"]

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


def training_loss(labels: tf.Tensor, *, predictions: tf.Tensor,
                  scaled_predictions: Optional[tf.Tensor] = None,
                  scale_state: Optional[scaling.ScaleState] = None,
                  loss_collection: Optional[str] = tf.compat.v1.GraphKeys.LOSSES) -> tf.Tensor:
    """Mean squared error of the forecast; with scaling, of the scaled forecast and labels."""
    if scale_state is None:
        return tf.compat.v1.losses.mean_squared_error(labels, predictions,
                                                      loss_collection=loss_collection)
    return tf.compat.v1.losses.mean_squared_error(scaling.scale(labels, scale_state),
                                                  scaled_predictions, loss_collection=loss_collection)


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
    loss = training_loss(labels, predictions=predictions, scaled_predictions=scaled_predictions,
                         scale_state=scale_state)
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


def forward(rawdata: tf.Tensor, params: Dict[str, Any]
            ) -> Tuple[tf.Tensor, tf.Tensor, Optional[scaling.ScaleState]]:
    """Raw past values [batch, n_inputs] -> (forecast, network output before unscaling, scaling)."""
    scaled_inputs, scale_state = scaling.scale_inputs(
        rawdata, scheme=params.get("scaling", "none"), mean=params.get("scale_mean", 0.0),
        std=params.get("scale_std", 1.0))
    scaled_predictions = forecast(scaled_inputs, model=params["model"],
                                  hidden_units=params["hidden_units"], n_outputs=params["n_outputs"])
    return scaling.unscale(scaled_predictions, scale_state), scaled_predictions, scale_state


def model_fn(features: Dict[str, tf.Tensor], labels: Optional[tf.Tensor], mode: str,
             params: Dict[str, Any]) -> tf.estimator.EstimatorSpec:
    """Estimator model_fn. `params`: model, hidden_units, n_outputs, optimizer, learning_rate,
    clip_gradient_norm (see `trainer.config.TrainerConfig`); optionally scaling, scale_mean,
    scale_std, season and mase_scale (see `trainer.scaling.resolve_statistics`), and
    steps_per_run with train_steps (see `train_several_steps`)."""
    if mode == tf.estimator.ModeKeys.TRAIN and params.get("steps_per_run", 1) > 1:
        return train_several_steps(features, labels, params)
    rawdata = features[FEATURE_KEY]
    predictions, scaled_predictions, scale_state = forward(rawdata, params)
    return make_estimator_spec(
        mode=mode, predictions=predictions, labels=labels, rawdata=rawdata,
        optimizer=params["optimizer"], learning_rate=params["learning_rate"],
        clip_gradient_norm=params["clip_gradient_norm"], scaled_predictions=scaled_predictions,
        scale_state=scale_state, season=params.get("season", 1),
        mase_scale=params.get("mase_scale"))


def train_several_steps(features: Dict[str, tf.Tensor], labels: tf.Tensor,
                        params: Dict[str, Any]) -> tf.estimator.EstimatorSpec:
    """TRAIN spec whose train op takes up to `steps_per_run` optimizer steps in one session run.

    The training input then gives `steps_per_run` batches at once: features
    [steps_per_run, batch, n_inputs] and labels [steps_per_run, batch, n_outputs]. A loop in
    the graph takes one ordinary step per batch (the same forward pass, loss, clipping and
    update as `make_estimator_spec`, and the global step counts each), so the session, its
    hooks and Python run once per `steps_per_run` steps instead of once per step. The loop
    stops at `train_steps` and `StopAtLastStepHook` ends training there, so a run ends on
    exactly that step (in a cluster, other workers' steps may still add a few, as they do with
    one step per run). The loss reported to hooks and summaries is the mean over the steps of
    the run. (`Estimator.train(max_steps=M)` with an M other than `train_steps` may end up to
    `steps_per_run` - 1 steps past M: the Estimator's own stop hook checks between runs.)
    """
    rawdata = features[FEATURE_KEY]
    labels = tf.cast(labels, tf.float32)
    global_step = tf.compat.v1.train.get_global_step()
    last_step = params["train_steps"]
    steps = tf.clip_by_value(last_step - global_step, 0, params["steps_per_run"])
    steps = tf.minimum(steps, tf.shape(rawdata, out_type=tf.int64)[0])

    def one_step(step: tf.Tensor, loss_sum: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        predictions, scaled_predictions, scale_state = forward(rawdata[step], params)
        # Out of the LOSSES collection: hooks fetch the run's loss, not one inside the loop.
        loss = training_loss(labels[step], predictions=predictions,
                             scaled_predictions=scaled_predictions, scale_state=scale_state,
                             loss_collection=None)
        train_op = make_train_op(loss, optimizer=params["optimizer"],
                                 learning_rate=params["learning_rate"],
                                 clip_gradient_norm=params["clip_gradient_norm"])
        with tf.control_dependencies([train_op]):
            return step + 1, loss_sum + loss

    taken, loss_sum = tf.while_loop(
        lambda step, _: step < steps, one_step,
        [tf.constant(0, tf.int64), tf.constant(0.0, tf.float32)], parallel_iterations=1)
    loss = loss_sum / tf.cast(tf.maximum(taken, 1), tf.float32)
    tf.compat.v1.losses.add_loss(loss)
    train_op = tf.group(taken, loss)
    with tf.control_dependencies([train_op]):
        step_after_run = global_step.read_value()
    return tf.estimator.EstimatorSpec(
        mode=tf.estimator.ModeKeys.TRAIN, loss=loss, train_op=train_op,
        training_hooks=[StopAtLastStepHook(train_op, step_after_run, last_step=last_step)])


class StopAtLastStepHook(tf.compat.v1.train.SessionRunHook):
    """Stops training once the global step read after a run's loop reaches `last_step`.

    The Estimator's own stop hook reads the step before a run and adds 1, so after a run of
    several steps it would need one more (empty) run to notice; this reads it after the loop.
    """

    def __init__(self, train_op: tf.Operation, step_after_run: tf.Tensor, *, last_step: int):
        self._train_op = train_op
        self._step_after_run = step_after_run
        self._last_step = last_step

    def before_run(self, run_context: tf.estimator.SessionRunContext
                   ) -> Optional[tf.estimator.SessionRunArgs]:
        # The step is read after the loop, so fetching it runs the loop: only with the train op.
        fetches = tf.nest.flatten(run_context.original_args.fetches)
        if any(fetch is self._train_op for fetch in fetches):
            return tf.estimator.SessionRunArgs(self._step_after_run)
        return None

    def after_run(self, run_context: tf.estimator.SessionRunContext,
                  run_values: tf.estimator.SessionRunValues) -> None:
        if run_values.results is not None and run_values.results >= self._last_step:
            run_context.request_stop()
