"""A readable progress line while training: step of target, loss, examples/s, ETA.

    step 1200/6000 (20%)  loss 0.0412  9,410 examples/s  ETA 0:00:33

Printed at a steady wall-clock interval by a SessionRunHook. Examples/s counts the whole
cluster's progress (global steps x batch size), so it reads the same on every worker. The ETA
comes from the pace since the first line: the first steps of a run include its warm-up (the
input pipeline's first files, the first evaluation's graph), which would make an ETA of an
hour for a run of minutes, so the first line shows none.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Optional, Tuple

from trainer.util.lazy import tf

logger = logging.getLogger(__name__)


def format_progress(*, step: int, target_step: int, loss: float, examples_per_sec: float,
                    eta_secs: Optional[float]) -> str:
    """One progress line (without an ETA when `eta_secs` is None).

    >>> format_progress(step=1200, target_step=6000, loss=0.04123, examples_per_sec=9410.2,
    ...                 eta_secs=33.4)
    'step 1200/6000 (20%)  loss 0.0412  9,410 examples/s  ETA 0:00:33'
    """
    percent = 100.0 * step / target_step if target_step else 100.0
    eta = ("" if eta_secs is None
           else f"  ETA {datetime.timedelta(seconds=int(round(eta_secs)))}")
    return (f"step {step}/{target_step} ({percent:.0f}%)  loss {loss:.3g}  "
            f"{examples_per_sec:,.0f} examples/s{eta}")


FIRST_LINE_SECS = 2.0  # the first line comes early: a short job shows its speed and ETA too


class ProgressHook(tf.estimator.SessionRunHook):
    """Logs `format_progress` after `FIRST_LINE_SECS` (or `interval_secs` if shorter), then
    every `interval_secs` seconds of training, and once at the end."""

    def __init__(self, *, target_step: int, batch_size: int, interval_secs: float):
        self._target_step = target_step
        self._batch_size = batch_size
        self._interval_secs = interval_secs

    def begin(self) -> None:
        self._global_step = tf.compat.v1.train.get_global_step()
        # The model adds its loss to the standard LOSSES collection (tf.compat.v1.losses).
        self._loss = tf.compat.v1.losses.get_total_loss(add_regularization_losses=False)
        self._last_time: Optional[float] = None
        self._last_step = 0
        self._last_loss: Optional[float] = None
        self._step = 0
        self._wait_secs = min(FIRST_LINE_SECS, self._interval_secs)
        self._first_line: Optional[Tuple[float, int]] = None  # (time, step) of the first line

    def before_run(self, run_context: tf.estimator.SessionRunContext) -> tf.estimator.SessionRunArgs:
        due = self._last_time is None or time.time() - self._last_time >= self._wait_secs
        fetches = {"step": self._global_step}
        if due:
            fetches["loss"] = self._loss
        return tf.estimator.SessionRunArgs(fetches)

    def after_run(self, run_context: tf.estimator.SessionRunContext,
                  run_values: tf.estimator.SessionRunValues) -> None:
        results = run_values.results
        self._step = int(results["step"])
        if "loss" not in results:
            return
        now = time.time()
        self._last_loss = float(results["loss"])
        if self._last_time is not None:
            self._log(now)
            self._wait_secs = self._interval_secs
        self._last_time, self._last_step = now, self._step

    def _log(self, now: float) -> None:
        elapsed = max(now - self._last_time, 1e-9)
        steps_per_sec = (self._step - self._last_step) / elapsed
        eta = None
        if self._first_line is None:
            self._first_line = (now, self._step)
        else:  # the pace since the first line, past the warm-up
            first_time, first_step = self._first_line
            pace = (self._step - first_step) / max(now - first_time, 1e-9)
            eta = max(self._target_step - self._step, 0) / pace if pace > 0 else None
        logger.info("%s", format_progress(
            step=self._step, target_step=self._target_step, loss=self._last_loss,
            examples_per_sec=steps_per_sec * self._batch_size, eta_secs=eta))

    def end(self, session: tf.compat.v1.Session) -> None:
        step = int(session.run(self._global_step))
        logger.info("training reached step %d/%d", step, self._target_step)
