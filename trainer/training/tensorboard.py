"""TensorBoard events in a directory of the service's choosing (Vertex AI's $AIP_TENSORBOARD_LOG_DIR).

The Estimator writes its events into the run directory (the training loss beside the
checkpoints, each evaluation under eval/), and cannot be told to write them elsewhere. A
Vertex AI TensorBoard uploads only what appears under $AIP_TENSORBOARD_LOG_DIR, so when that
is set the run writes the same figures there too, as two TensorBoard runs:

    TENSORBOARD_DIR/train/events.out.tfevents.*   `loss` every SUMMARY_STEPS steps (the chief)
    TENSORBOARD_DIR/eval/events.out.tfevents.*    every metric of every evaluation

`LossSummaryHook` writes the first, `trainer.training.reporting.ReportingExporter` the second
through a `ScalarWriter`.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Mapping, Optional

from trainer.util.lazy import tf

logger = logging.getLogger(__name__)

TRAIN_RUN = "train"
EVAL_RUN = "eval"  # the Estimator's own name for its evaluation events
SUMMARY_STEPS = 100  # as often as the Estimator's own loss summary (RunConfig's default)
FLUSH_SECS = 30.0  # an events file on Cloud Storage is uploaded whole at every flush


class ScalarWriter:
    """Appends scalar summaries (`simple_value`s, as the Estimator writes) to an events file of
    its own in `log_dir` (local or gs://)."""

    def __init__(self, log_dir: str):
        self.log_dir = log_dir
        # tf.compat.v1's writer refuses to be made in eager mode, though writing needs no graph.
        # A unique suffix: a process that writes here again within the same second (a resumed
        # run) must not replace the events file of the first.
        with tf.Graph().as_default():
            self._writer = tf.compat.v1.summary.FileWriter(
                log_dir, flush_secs=FLUSH_SECS,
                filename_suffix=f".{os.getpid()}.{uuid.uuid4().hex[:8]}")

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """One event at `step` holding every tag of `scalars`."""
        summary = tf.compat.v1.Summary(value=[
            tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
            for tag, value in sorted(scalars.items())])
        self._writer.add_summary(summary, global_step=int(step))

    def flush(self) -> None:
        self._writer.flush()


class LossSummaryHook(tf.estimator.SessionRunHook):
    """Writes the training loss to `log_dir` every `every_steps` global steps and at the end of
    each training run: one events file per process, however often the Estimator trains."""

    def __init__(self, *, log_dir: str, every_steps: int = SUMMARY_STEPS):
        self._log_dir = log_dir
        self._every_steps = every_steps
        self._writer: Optional[ScalarWriter] = None
        self._next_step = 0
        self._unwritten: Optional[float] = None  # the last run's loss, when not written yet

    def begin(self) -> None:
        if self._writer is None:
            self._writer = ScalarWriter(self._log_dir)
            logger.info("TensorBoard: the training loss goes to %s", self._log_dir)
        self._global_step = tf.compat.v1.train.get_global_step()
        # The model adds its loss to the standard LOSSES collection (tf.compat.v1.losses).
        self._loss = tf.compat.v1.losses.get_total_loss(add_regularization_losses=False)

    def before_run(self, run_context: tf.estimator.SessionRunContext) -> tf.estimator.SessionRunArgs:
        # The loss is computed by every step anyway: fetching it costs nothing.
        return tf.estimator.SessionRunArgs({"step": self._global_step, "loss": self._loss})

    def after_run(self, run_context: tf.estimator.SessionRunContext,
                  run_values: tf.estimator.SessionRunValues) -> None:
        # The step fetched beside the train op is read before that run's updates: it is the step
        # that the previous run's loss led to.
        step = int(run_values.results["step"])
        if self._unwritten is not None and step >= self._next_step:
            self._write(step)
        self._unwritten = float(run_values.results["loss"])

    def _write(self, step: int) -> None:
        self._writer.write(step, {"loss": self._unwritten})
        self._next_step = step - step % self._every_steps + self._every_steps
        self._unwritten = None

    def end(self, session: tf.compat.v1.Session) -> None:
        if self._unwritten is not None:
            self._write(int(session.run(self._global_step)))
        self._writer.flush()
