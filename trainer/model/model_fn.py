"""The custom estimator's model_fn: one forecast, then loss, train op, metrics and exports per mode.

`model_fn(features, labels, mode, params)` takes a `trainer.model.spec.ModelSpec` as `params`,
computes the network's output once and hands it to `make_estimator_spec`, which builds the
six parts of the EstimatorSpec through the spec's head (`trainer.model.heads`, like the
canned estimators' heads): mode, predictions (`{"predicted": ...}` for the point head),
export outputs, loss, train op and eval metrics (rmse, mae, mape pooled; smape, mase, rmsse
per series when the evaluation input names each window's series (`series_info`); the same
for the naive and seasonal naive forecasts, from `trainer.model.metrics`, so that every
evaluation states the model's skill; with the quantile head, the interval metrics of the model
and the baselines too). With a calibration in the spec (`trainer.model.calibration`), the
quantiles are calibrated after unscaling in every mode (a point head gains them), so that the
predictions, the export and the interval metrics all see the calibrated ones. In PREDICT mode
no loss, train op or metric is built; the train op exists only in TRAIN and the metrics only
in EVAL.

With scaling (`trainer.model.scaling`) the network sees scaled inputs and its output is
unscaled in the graph, so predictions, metrics and the SavedModel are in the original units;
the loss compares the scaled output with the targets scaled the same way, so that its size
does not depend on the series' units.

With `steps_per_run` N > 1, TRAIN mode gets N batches at once and `train_several_steps`
takes N ordinary steps in a loop inside the graph: the same updates as N runs of one step,
for one session run (the Estimator's hooks and Python cost about a third of a step otherwise).
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

from trainer.data.schema import FEATURE_KEY, MASE_SCALE_KEY, RMSSE_SCALE_KEY, SERIES_INDEX_KEY
from trainer.model import scaling
from trainer.model.calibration import calibrate_predictions
from trainer.model.covariate_inputs import network_inputs
from trainer.model.heads import PREDICTIONS_KEY, QUANTILES_KEY, Head, get_head
from trainer.model.metrics import SeriesInfo, metric_ops
from trainer.model.networks import build_network
from trainer.model.optimizers import make_train_op
from trainer.model.spec import ModelSpec
from trainer.util.lazy import tf

__all__ = ["model_fn", "make_estimator_spec", "train_several_steps", "StopAtLastStepHook"]


class Forward(NamedTuple):
    """One forward pass: the output [batch, n_outputs, width] in the series' units, the same
    before unscaling (what the loss compares), and the scaling of the window."""

    output: tf.Tensor
    scaled_output: tf.Tensor
    scale_state: Optional[scaling.ScaleState]


def forward(features: Dict[str, tf.Tensor], spec: ModelSpec, head: Head, *,
            training: bool = False) -> Forward:
    """Features (raw past values [batch, n_inputs] and any covariates) -> the network's output,
    scaled and in the series' units (with dropout when `training`)."""
    scaled_inputs, scale_state = scaling.scale_inputs(
        features[FEATURE_KEY], scheme=spec.scaling, mean=spec.scale_mean, std=spec.scale_std)
    sequence, context = network_inputs(scaled_inputs, features, spec.covariates,
                                       n_inputs=spec.n_inputs)
    scaled_output = head.output(build_network(sequence, context, model=spec.model,
                                              hidden_units=spec.hidden_units,
                                              n_outputs=spec.n_outputs, width=head.width,
                                              dropout=spec.dropout, training=training))
    return Forward(scaling.unscale(scaled_output, scale_state), scaled_output, scale_state)


def training_loss(head: Head, labels: tf.Tensor, forward_pass: Forward, *,
                  loss_collection: Optional[str] = tf.compat.v1.GraphKeys.LOSSES) -> tf.Tensor:
    """The head's loss of the scaled output against the labels scaled the same way."""
    return head.loss(labels=scaling.scale(labels, forward_pass.scale_state),
                     output=forward_pass.scaled_output, loss_collection=loss_collection)


def series_info(features: Dict[str, tf.Tensor], spec: ModelSpec) -> Optional[SeriesInfo]:
    """The series of each evaluated window and their scales, when the input carries them."""
    if SERIES_INDEX_KEY not in features or not spec.series_count:
        return None
    return SeriesInfo(index=features[SERIES_INDEX_KEY], mase_scale=features[MASE_SCALE_KEY],
                      rmsse_scale=features[RMSSE_SCALE_KEY], count=spec.series_count)


def make_estimator_spec(*, mode: str, spec: ModelSpec, head: Head, forward_pass: Forward,
                        rawdata: tf.Tensor, labels: Optional[tf.Tensor],
                        series: Optional[SeriesInfo] = None) -> tf.estimator.EstimatorSpec:
    """The EstimatorSpec for `mode`, built by `head` from one forward pass (`series`: the
    evaluated windows' series, scored one by one), its quantiles calibrated by the spec's
    calibration when it has one."""
    predictions = head.predictions(forward_pass.output)
    levels = head.levels
    if spec.calibration is not None:
        predictions = calibrate_predictions(predictions, rawdata=rawdata,
                                            calibration=spec.calibration)
        levels = spec.calibration.levels
    export_outputs = head.export_outputs(predictions)
    if mode == tf.estimator.ModeKeys.PREDICT:
        return tf.estimator.EstimatorSpec(mode=mode, predictions=predictions,
                                          export_outputs=export_outputs)

    labels = tf.cast(labels, tf.float32)
    loss = training_loss(head, labels, forward_pass)
    train_op = None
    eval_metric_ops = None
    if mode == tf.estimator.ModeKeys.TRAIN:
        train_op = make_train_op(loss, optimizer=spec.optimizer, learning_rate=spec.learning_rate,
                                 clip_gradient_norm=spec.clip_gradient_norm,
                                 schedule=spec.lr_schedule, warmup_steps=spec.warmup_steps,
                                 train_steps=spec.train_steps)
    else:
        eval_metric_ops = metric_ops(actual=labels, forecast=predictions[PREDICTIONS_KEY],
                                     inputs=rawdata, season=spec.season, mase_scale=spec.mase_scale,
                                     rmsse_scale=spec.rmsse_scale, series=series,
                                     quantiles=predictions.get(QUANTILES_KEY), levels=levels)
    return tf.estimator.EstimatorSpec(
        mode=mode, predictions=predictions, export_outputs=export_outputs, loss=loss,
        train_op=train_op, eval_metric_ops=eval_metric_ops)


def model_fn(features: Dict[str, tf.Tensor], labels: Optional[tf.Tensor], mode: str,
             params: ModelSpec) -> tf.estimator.EstimatorSpec:
    """Estimator model_fn; `params` is the model's `ModelSpec`."""
    if not isinstance(params, ModelSpec):
        raise TypeError(f"model_fn takes a ModelSpec as params, got {type(params).__name__}")
    head = get_head(params.head, params.quantiles)
    if mode == tf.estimator.ModeKeys.TRAIN and params.steps_per_run > 1:
        return train_several_steps(features, labels, params, head)
    rawdata = features[FEATURE_KEY]
    return make_estimator_spec(mode=mode, spec=params, head=head,
                               forward_pass=forward(features, params, head,
                                                    training=mode == tf.estimator.ModeKeys.TRAIN),
                               rawdata=rawdata,
                               labels=labels, series=series_info(features, params))


def train_several_steps(features: Dict[str, tf.Tensor], labels: tf.Tensor, spec: ModelSpec,
                        head: Head) -> tf.estimator.EstimatorSpec:
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
    last_step = spec.train_steps
    steps = tf.clip_by_value(last_step - global_step, 0, spec.steps_per_run)
    steps = tf.minimum(steps, tf.shape(rawdata, out_type=tf.int64)[0])

    def one_step(step: tf.Tensor, loss_sum: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        # Out of the LOSSES collection: hooks fetch the run's loss, not one inside the loop.
        step_features = {key: value[step] for key, value in features.items()}
        loss = training_loss(head, labels[step], forward(step_features, spec, head, training=True),
                             loss_collection=None)
        train_op = make_train_op(loss, optimizer=spec.optimizer, learning_rate=spec.learning_rate,
                                 clip_gradient_norm=spec.clip_gradient_norm,
                                 schedule=spec.lr_schedule, warmup_steps=spec.warmup_steps,
                                 train_steps=spec.train_steps)
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
